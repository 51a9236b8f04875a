//go:build linux

package native

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// As in Docker: files in /proc that leak host information or reach the
// kernel are covered with /dev/null, such directories with an empty
// read-only tmpfs, and the kernel's tunables are bound read-only.
var (
	maskedProcFiles = []string{"kcore", "keys", "timer_list", "timer_stats", "sched_debug", "latency_stats"}
	maskedProcDirs  = []string{"acpi", "asound", "scsi", "firmware"}
	readonlyProc    = []string{"bus", "fs", "irq", "sys", "sysrq-trigger"}
	maskedSysDirs   = []string{"firmware", "kernel/security", "kernel/debug", "devices/virtual/powercap", "fs/cgroup"}
)

// mountProc mounts a procfs of the sandbox's pid namespace at /proc, with
// the masks above.
func mountProc(root int) error {
	proc, err := newMount("proc", nil, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(proc)
	if err := attachAt(proc, root, "/proc", false); err != nil {
		return err
	}
	for _, f := range maskedProcFiles {
		if !exists(proc, f) {
			continue
		}
		t, err := unix.OpenTree(unix.AT_FDCWD, "/dev/null", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return err
		}
		err = unix.MoveMount(t, "", proc, f, unix.MOVE_MOUNT_F_EMPTY_PATH)
		unix.Close(t)
		if err != nil {
			return fmt.Errorf("masking /proc/%s: %w", f, err)
		}
	}
	if err := maskDirs(proc, "/proc", maskedProcDirs); err != nil {
		return err
	}
	for _, p := range readonlyProc {
		if !exists(proc, p) {
			continue
		}
		t, err := unix.OpenTree(proc, p, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if err != nil {
			return fmt.Errorf("/proc/%s: %w", p, err)
		}
		err = unix.MountSetattr(t, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{
			Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC,
		})
		if err == nil {
			err = unix.MoveMount(t, "", proc, p, unix.MOVE_MOUNT_F_EMPTY_PATH)
		}
		unix.Close(t)
		if err != nil {
			return fmt.Errorf("making /proc/%s read-only: %w", p, err)
		}
	}
	return nil
}

// mountSys mounts a read-only sysfs (of the sandbox's network namespace)
// at /sys, with firmware, security, debug, powercap and cgroup masked.
func mountSys(root int) error {
	sys, err := newMount("sysfs", nil, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(sys)
	if err := attachAt(sys, root, "/sys", false); err != nil {
		return err
	}
	return maskDirs(sys, "/sys", maskedSysDirs)
}

// maskDirs covers each existing directory with an empty read-only tmpfs.
func maskDirs(dir int, where string, names []string) error {
	for _, d := range names {
		if !exists(dir, d) {
			continue
		}
		t, err := newMount("tmpfs", []string{"size=4k", "mode=0555"},
			unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			return err
		}
		err = unix.MoveMount(t, "", dir, d, unix.MOVE_MOUNT_F_EMPTY_PATH)
		unix.Close(t)
		if err != nil {
			return fmt.Errorf("masking %s/%s: %w", where, d, err)
		}
	}
	return nil
}

func exists(dir int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}
