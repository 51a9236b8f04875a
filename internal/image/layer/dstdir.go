package layer

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// resolveBeneath keeps every open of a path inside dst from leaving it: the
// kernel refuses symlinks (so one planted by the archive cannot redirect a
// write to the host), magic links and mount crossings on the way.
const resolveBeneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS |
	unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openBeneath opens name relative to dirfd under resolveBeneath.
func openBeneath(dirfd int, name string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW), Resolve: resolveBeneath}
	if flags&unix.O_CREAT != 0 {
		how.Mode = uint64(mode)
	}
	for {
		fd, err := unix.Openat2(dirfd, name, &how)
		// EAGAIN: a concurrent rename made the kernel give up a RESOLVE_ lookup.
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// dstDir hands out O_PATH descriptors of directories inside dst. Tar entries
// come grouped by directory, so caching them saves an openat2 per entry.
type dstDir struct {
	root    int            // dst itself, O_RDONLY so it can also be fchmod'ed
	fds     map[string]int // cleaned logical path -> O_PATH directory fd
	retired []int          // dropped from fds but maybe still held by the current entry
}

const maxCachedDirs = 256

func openDst(dst string) (*dstDir, error) {
	fd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening layer directory: %w", &os.PathError{Op: "open", Path: dst, Err: err})
	}
	d := &dstDir{root: fd, fds: map[string]int{}}
	// dst must start empty: whatever it holds is then known to come from this
	// layer, which is how whiteouts tell this layer's own entries apart.
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		d.close()
		return nil, fmt.Errorf("opening layer directory: %w", err)
	}
	f := os.NewFile(uintptr(dup), dst)
	names, err := f.Readdirnames(1)
	f.Close()
	if err != nil && err != io.EOF {
		d.close()
		return nil, fmt.Errorf("reading layer directory: %w", err)
	}
	if len(names) > 0 {
		d.close()
		return nil, fmt.Errorf("layer directory %s is not empty", dst)
	}
	return d, nil
}

// dir returns a descriptor of the dst directory at logical path p, valid
// until the end of the current entry.
func (d *dstDir) dir(p string) (int, error) {
	if p == "" {
		return d.root, nil
	}
	if fd, ok := d.fds[p]; ok {
		return fd, nil
	}
	fd, err := openBeneath(d.root, p, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, fmt.Errorf("opening %s in the layer directory: %w", p, err)
	}
	d.fds[p] = fd
	return fd, nil
}

// forget drops every cached descriptor: a directory was removed, and a
// descriptor of it (or of anything below) would now write into nothing.
// They are closed at the end of the entry, since the caller may hold one.
func (d *dstDir) forget() {
	for p, fd := range d.fds {
		d.retired = append(d.retired, fd)
		delete(d.fds, p)
	}
}

// endEntry closes what forget retired and keeps the cache bounded.
func (d *dstDir) endEntry() {
	if len(d.fds) > maxCachedDirs {
		d.forget()
	}
	for _, fd := range d.retired {
		unix.Close(fd)
	}
	d.retired = d.retired[:0]
}

func (d *dstDir) close() {
	d.forget()
	d.endEntry()
	unix.Close(d.root)
}

// removeAllAt removes name in dirfd and, if it is a directory, everything
// below it, without ever following a symlink.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	fd, err := openBeneath(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	// All names first: removing entries while reading the directory may make
	// getdents skip some.
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	for _, n := range names {
		if err := removeAllAt(fd, n); err != nil {
			return fmt.Errorf("removing %s: %w", name, err)
		}
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	return nil
}

// isWhiteout reports whether st is overlayfs's whiteout: a 0/0 char device.
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// statAt lstats name in dirfd; ok is false when nothing is there.
func statAt(dirfd int, name string) (st unix.Stat_t, ok bool, err error) {
	err = unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("stat %s: %w", name, err)
	}
	return st, true, nil
}

// readlinkAt reads the symlink name in dirfd.
func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", fmt.Errorf("readlink %s: %w", name, err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}
