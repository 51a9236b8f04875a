package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// hardlink links parent/base to the entry hdr.Linkname names, resolved in
// the merged view. A target that only a lower layer has is first copied up
// into dst, as overlayfs would on link(2): a hard link cannot span layers.
func (a *applier) hardlink(hdr *tar.Header, parent *node, base string) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	if target == "" {
		return fmt.Errorf("hardlink to the image root")
	}
	tdir, tbase := splitName(target)
	tparent, err := a.resolveDir(tdir, false)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	f, err := a.lookup(tparent, tbase)
	if err != nil {
		return err
	}
	switch f.kind {
	case kindNone:
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, errNotExist)
	case kindDir:
		return fmt.Errorf("hardlink target %q is a directory", hdr.Linkname)
	}
	if tparent == parent && tbase == base {
		return fmt.Errorf("hardlink to itself")
	}
	if f.layer != dstLayer {
		if err := a.ensureDst(tparent); err != nil {
			return err
		}
		if err := a.copyUp(tparent, tbase, f.layer); err != nil {
			return err
		}
	}
	// Replacing parent/base may remove the target's directory (a link "d"
	// to "d/f"); linkat then fails, as it should.
	err = a.create(parent, base, func(pfd int) error {
		tfd, err := a.dst.dir(tparent.path)
		if err != nil {
			return err
		}
		// Flags 0: a link to a symlink links the symlink itself, as tar means.
		return unix.Linkat(tfd, tbase, pfd, base, 0)
	})
	if err != nil {
		return fmt.Errorf("linking %s to %s: %w", parent.child(base), tparent.child(tbase), err)
	}
	a.stats.Hardlinks++
	return nil
}

// copyUp copies the non-directory tparent/name of lower layer into dst:
// content, mode, owner (when privileged), xattrs and times.
func (a *applier) copyUp(tparent *node, name string, layer int) error {
	p := tparent.child(name)
	src := filepath.Join(a.lowers[layer], p)
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("copying up %s: %w", p, err)
	}
	pfd, err := a.dst.dir(tparent.path)
	if err != nil {
		return err
	}
	defer tparent.forgetChild(name)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return a.copyUpFile(pfd, name, p, src, &st)
	case unix.S_IFLNK:
		t, err := os.Readlink(src)
		if err != nil {
			return fmt.Errorf("copying up %s: %w", p, err)
		}
		if err := unix.Symlinkat(t, pfd, name); err != nil {
			return fmt.Errorf("copying up %s: %w", p, err)
		}
	case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK:
		if err := unix.Mknodat(pfd, name, st.Mode&unix.S_IFMT|0o600, int(st.Rdev)); err != nil {
			return fmt.Errorf("copying up %s: %w", p, err)
		}
	default:
		return fmt.Errorf("copying up %s: unsupported file type %#o", p, st.Mode&unix.S_IFMT)
	}
	if err := a.chownAt(pfd, name, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("copying up %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := chmodAt(pfd, name, a.perm(st.Mode)); err != nil {
			return fmt.Errorf("copying up %s: %w", p, err)
		}
	}
	if err := setTimesAt(pfd, name, statTimes(&st)); err != nil {
		return fmt.Errorf("copying up %s: %w", p, err)
	}
	return nil
}

func (a *applier) copyUpFile(pfd int, name, p, src string, st *unix.Stat_t) (err error) {
	wrap := func(err error) error { return fmt.Errorf("copying up %s: %w", p, err) }
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return wrap(err)
	}
	defer in.Close()
	fd, err := openBeneath(pfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		return wrap(err)
	}
	out := os.NewFile(uintptr(fd), p)
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil && !errors.Is(cerr, os.ErrClosed) {
			err = wrap(cerr)
		}
	}()
	if _, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, a.buf); err != nil {
		return wrap(err)
	}
	if a.opts.Privileged {
		if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
			return wrap(err)
		}
	}
	if err := a.copyXattrs(p, src, fd); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, a.perm(st.Mode)); err != nil {
		return wrap(err)
	}
	ts := statTimes(st)
	if err := unix.UtimesNanoAt(fd, "", ts[:], unix.AT_EMPTY_PATH); err != nil {
		return wrap(err)
	}
	return nil
}
