package layer

import (
	"archive/tar"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// dirMeta is what a directory gets once its contents are written: creating
// an entry changes its parent's mtime, and a read-only mode would stop an
// unprivileged apply from creating the entries at all.
type dirMeta struct {
	mode     uint32
	times    [2]unix.Timespec
	setTimes bool
}

func (m dirMeta) apply(fd int) error {
	if err := unix.Fchmod(fd, m.mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if m.setTimes {
		if err := unix.UtimesNanoAt(fd, "", m.times[:], unix.AT_EMPTY_PATH); err != nil {
			return fmt.Errorf("setting times: %w", err)
		}
	}
	return nil
}

// perm keeps the permission bits of a tar or stat mode. Setuid and setgid
// survive only a privileged apply: unprivileged, the files are not even
// owned by their image owners, and inside the sandbox no_new_privs makes
// the bits inert anyway.
func (a *applier) perm(mode uint32) uint32 {
	m := mode & 0o7777
	if !a.opts.Privileged {
		m &^= unix.S_ISUID | unix.S_ISGID
	}
	return m
}

func (a *applier) hdrPerm(hdr *tar.Header) uint32 {
	return a.perm(uint32(hdr.Mode))
}

func hdrTimes(hdr *tar.Header) [2]unix.Timespec {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	return [2]unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		// The zero time.Time is year 1, which the kernel would store as
		// garbage; the epoch is what tar means by "no time".
		return unix.Timespec{}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

func statTimes(st *unix.Stat_t) [2]unix.Timespec {
	return [2]unix.Timespec{st.Atim, st.Mtim}
}

// chownAt restores ownership of name in dirfd, not following a symlink,
// when the caller may.
func (a *applier) chownAt(dirfd int, name string, uid, gid int) error {
	if !a.opts.Privileged {
		return nil
	}
	if err := unix.Fchownat(dirfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	return nil
}

// chmodAt sets the mode of a fifo or device node just created at dirfd/name
// (mknod applies the umask). fchmodat2 refuses to follow a symlink; kernels
// before 6.6 lack it, and then plain fchmodat is used once name is seen not
// to be a symlink: this apply just made the node and nothing else writes
// into dst.
func chmodAt(dirfd int, name string, mode uint32) error {
	err := unix.Fchmodat(dirfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		var st unix.Stat_t
		if err = unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				return fmt.Errorf("chmod: %s became a symlink", name)
			}
			err = unix.Fchmodat(dirfd, name, mode, 0)
		}
	}
	if err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}

func setTimesAt(dirfd int, name string, ts [2]unix.Timespec) error {
	if err := unix.UtimesNanoAt(dirfd, name, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	return nil
}
