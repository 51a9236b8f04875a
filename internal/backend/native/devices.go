//go:build linux

package native

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// devices are bound from the host's /dev (mknod is impossible in a user
// namespace). There is no /dev/console.
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// devLinks are /dev's symlinks.
var devLinks = [][2]string{
	{"ptmx", "pts/ptmx"},
	{"fd", "/proc/self/fd"},
	{"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"},
}

// mountDev builds a minimal /dev on a small tmpfs: the devices above, a
// private devpts instance, /dev/shm, and the usual links. The tmpfs itself
// is read-only afterwards.
func mountDev(root, ttyGid int) error {
	dev, err := newMount("tmpfs", []string{"mode=0755", "size=64k"}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	if err := attachAt(dev, root, "/dev", false); err != nil {
		return err
	}
	for _, name := range devices {
		if err := bindDevice(dev, name); err != nil {
			return fmt.Errorf("/dev/%s: %w", name, err)
		}
	}
	ptsOpts := []string{"ptmxmode=0666", "mode=0620"}
	if ttyGid >= 0 {
		ptsOpts = append(ptsOpts, "gid="+strconv.Itoa(ttyGid))
	}
	pts, err := newMount("devpts", ptsOpts, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return err
	}
	err = attachIn(pts, dev, "pts", 0o755)
	unix.Close(pts)
	if err != nil {
		return fmt.Errorf("/dev/pts: %w", err)
	}
	shm, err := newMount("tmpfs", []string{"mode=1777", "size=64m"}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return err
	}
	err = attachIn(shm, dev, "shm", 0o755)
	unix.Close(shm)
	if err != nil {
		return fmt.Errorf("/dev/shm: %w", err)
	}
	for _, l := range devLinks {
		if err := unix.Symlinkat(l[1], dev, l[0]); err != nil {
			return fmt.Errorf("/dev/%s: %w", l[0], err)
		}
	}
	return unix.MountSetattr(dev, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
}

// bindDevice binds the host's /dev/name over an empty file in dir. (Lookups
// from the process root still see the host's tree: the sandbox's root is
// stacked over it but not yet pivoted to.)
func bindDevice(dir int, name string) error {
	f, err := unix.Openat(dir, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o666)
	if err != nil {
		return err
	}
	unix.Close(f)
	t, err := unix.OpenTree(unix.AT_FDCWD, "/dev/"+name, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(t)
	if err := unix.MoveMount(t, "", dir, name, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return err
	}
	return unix.MountSetattr(t, "", unix.AT_EMPTY_PATH, &unix.MountAttr{
		Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC, Propagation: unix.MS_PRIVATE,
	})
}

// attachIn attaches mount m at a new directory name in dir.
func attachIn(m, dir int, name string, mode uint32) error {
	if err := unix.Mkdirat(dir, name, mode); err != nil {
		return err
	}
	return unix.MoveMount(m, "", dir, name, unix.MOVE_MOUNT_F_EMPTY_PATH)
}
