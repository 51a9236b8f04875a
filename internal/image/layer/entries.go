package layer

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// dir creates or updates a directory. A directory over a directory keeps it
// (its contents merge, as in docker); over anything else it replaces it.
func (a *applier) dir(hdr *tar.Header, parent *node, base string) error {
	p := parent.child(base)
	pfd, err := a.dst.dir(parent.path)
	if err != nil {
		return err
	}
	st, ok, err := statAt(pfd, base)
	if err != nil {
		return err
	}
	overWhiteout := false
	if !ok || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if ok {
			overWhiteout = isWhiteout(&st)
			if err := unix.Unlinkat(pfd, base, 0); err != nil {
				return fmt.Errorf("removing %s: %w", p, err)
			}
		}
		if err := unix.Mkdirat(pfd, base, 0o755); err != nil {
			return fmt.Errorf("creating directory %s: %w", p, err)
		}
	}
	parent.forgetChild(base)
	fd, err := openBeneath(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", p, err)
	}
	defer unix.Close(fd)
	if overWhiteout {
		// This layer whited the name out earlier: keep what it hid hidden.
		if err := unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("marking %s opaque: %w", p, err)
		}
	}
	if err := a.dirMetadata(hdr, fd); err != nil {
		return err
	}
	a.pending[p] = dirMeta{mode: a.hdrPerm(hdr), times: hdrTimes(hdr), setTimes: true}
	a.stats.Dirs++
	return nil
}

// rootDir applies an entry for the image root ("./") to dst itself.
func (a *applier) rootDir(hdr *tar.Header) error {
	if err := a.dirMetadata(hdr, a.dst.root); err != nil {
		return err
	}
	a.pending[""] = dirMeta{mode: a.hdrPerm(hdr), times: hdrTimes(hdr), setTimes: true}
	a.stats.Dirs++
	return nil
}

func (a *applier) dirMetadata(hdr *tar.Header, fd int) error {
	if a.opts.Privileged {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	return a.setXattrs(hdr, fd, a.wantedXattrs(hdr))
}

// file writes a regular file.
func (a *applier) file(tr io.Reader, hdr *tar.Header, parent *node, base string) error {
	p := parent.child(base)
	fd := -1
	err := a.create(parent, base, func(pfd int) (err error) {
		fd, err = openBeneath(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
		return err
	})
	if err != nil {
		return fmt.Errorf("creating %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	// Hide os.File's ReadFrom, which would copy through a fresh buffer of
	// its own for every file instead of the shared one.
	var w io.Writer = struct{ io.Writer }{f}
	sparse := isSparse(hdr)
	if sparse {
		w = &holeWriter{f: f}
	}
	n, err := io.CopyBuffer(w, tr, a.buf)
	if err == nil && n != hdr.Size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if sparse {
		// A trailing hole was only skipped over: give the file its length.
		if err := f.Truncate(n); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
	}
	if a.opts.Privileged {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown %s: %w", p, err)
		}
	}
	if err := a.setXattrs(hdr, fd, a.wantedXattrs(hdr)); err != nil {
		return err
	}
	// After chown, which clears setuid and setgid.
	if err := unix.Fchmod(fd, a.hdrPerm(hdr)); err != nil {
		return fmt.Errorf("chmod %s: %w", p, err)
	}
	ts := hdrTimes(hdr)
	if err := unix.UtimesNanoAt(fd, "", ts[:], unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("setting times of %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	a.stats.Files++
	a.stats.Bytes += n
	return nil
}

// isSparse reports a GNU sparse entry, whose declared size can be far
// larger than the archive: its holes must stay holes, not become written
// zeros filling the disk.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// holeWriter seeks over all-zero chunks instead of writing them.
type holeWriter struct{ f *os.File }

func (w *holeWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b != 0 {
			return w.f.Write(p)
		}
	}
	if _, err := w.f.Seek(int64(len(p)), io.SeekCurrent); err != nil {
		return 0, err
	}
	return len(p), nil
}

// symlink stores the link target as it is, even one pointing outside the
// image (/bin/sh -> /bin/busybox is common): it is only ever followed inside
// the image root, by resolveDir here and by the sandbox's own root later.
func (a *applier) symlink(hdr *tar.Header, parent *node, base string) error {
	p := parent.child(base)
	err := a.create(parent, base, func(pfd int) error { return unix.Symlinkat(hdr.Linkname, pfd, base) })
	if err != nil {
		return fmt.Errorf("creating symlink %s: %w", p, err)
	}
	pfd, err := a.dst.dir(parent.path)
	if err != nil {
		return err
	}
	if err := a.chownAt(pfd, base, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	a.noXattrs(hdr, "symlink")
	if err := setTimesAt(pfd, base, hdrTimes(hdr)); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	a.stats.Symlinks++
	return nil
}

// special creates a fifo or a device node (entry has already turned away
// devices an unprivileged apply may not make).
func (a *applier) special(hdr *tar.Header, parent *node, base string) error {
	p := parent.child(base)
	var mode uint32
	switch hdr.Typeflag {
	case tar.TypeFifo:
		mode = unix.S_IFIFO
	case tar.TypeChar:
		mode = unix.S_IFCHR
	default:
		mode = unix.S_IFBLK
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	err := a.create(parent, base, func(pfd int) error { return unix.Mknodat(pfd, base, mode|0o600, int(dev)) })
	if err != nil {
		return fmt.Errorf("creating %s: %w", p, err)
	}
	pfd, err := a.dst.dir(parent.path)
	if err != nil {
		return err
	}
	if err := a.chownAt(pfd, base, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := chmodAt(pfd, base, a.hdrPerm(hdr)); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	a.noXattrs(hdr, "fifo or device node")
	if err := setTimesAt(pfd, base, hdrTimes(hdr)); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	a.stats.Files++
	return nil
}
