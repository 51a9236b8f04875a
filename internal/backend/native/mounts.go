//go:build linux

package native

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// buildRoot assembles the sandbox's root filesystem in the init stage's
// private mount namespace and returns a descriptor of it (the root of the
// overlay mount, attached over "/" so that pivot_root can switch to it).
//
// Layers must be mounts of this namespace for overlayfs to use them, so the
// trees the host cloned are first attached to a scratch tmpfs stacked on
// "/" (lookups from the process root do not see it), the overlay is created
// from them, and the scratch tmpfs is detached again. Then the image's
// binds, the sandbox's mounts, /proc, /sys and /dev go on top, all through
// descriptors: nothing is looked up by path in the sandbox's tree except
// with RESOLVE_IN_ROOT.
func buildRoot(cfg *initConfig) (root int, err error) {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return -1, fmt.Errorf("making mounts private: %w", err)
	}
	scratch, err := newMount("tmpfs", []string{"mode=0700", "size=64k"}, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(scratch)
	if err := unix.MoveMount(scratch, "", unix.AT_FDCWD, "/", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return -1, fmt.Errorf("attaching scratch space: %w", err)
	}
	scratchPath := "/proc/self/fd/" + strconv.Itoa(scratch)
	attach := func(s source, name string) error {
		t, err := s.tree()
		if err != nil {
			return err
		}
		defer unix.Close(t)
		if err := unix.Mkdirat(scratch, name, 0o700); err != nil {
			return err
		}
		return unix.MoveMount(t, "", scratch, name, unix.MOVE_MOUNT_F_EMPTY_PATH)
	}
	var lowers []string
	for i, l := range cfg.Lowers {
		name := "l" + strconv.Itoa(i)
		if err := attach(l, name); err != nil {
			return -1, fmt.Errorf("image layer %d: %w", i, err)
		}
		lowers = append(lowers, scratchPath+"/"+name)
	}
	if err := attach(cfg.Overlay, "ovl"); err != nil {
		return -1, fmt.Errorf("overlay directories: %w", err)
	}
	root, err = newMount("overlay", []string{
		"lowerdir=" + strings.Join(lowers, ":"),
		"upperdir=" + scratchPath + "/ovl/upper",
		"workdir=" + scratchPath + "/ovl/work",
		"userxattr",
	}, 0)
	if err != nil {
		return -1, err
	}
	defer func() {
		if err != nil {
			unix.Close(root)
		}
	}()
	// overlayfs holds private clones of its layers: the scratch space and
	// the trees attached to it can go.
	if err := unix.Unmount(scratchPath, unix.MNT_DETACH); err != nil {
		return -1, fmt.Errorf("detaching scratch space: %w", err)
	}
	if err := unix.MoveMount(root, "", unix.AT_FDCWD, "/", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return -1, fmt.Errorf("attaching the root overlay: %w", err)
	}

	for _, b := range cfg.Binds {
		if err := bindInto(root, b); err != nil {
			return -1, fmt.Errorf("mounting %s: %w", b.Target, err)
		}
	}
	if err := mountProc(root); err != nil {
		return -1, fmt.Errorf("/proc: %w", err)
	}
	if err := mountSys(root); err != nil {
		return -1, fmt.Errorf("/sys: %w", err)
	}
	if err := mountDev(root, cfg.TTYGid); err != nil {
		return -1, fmt.Errorf("/dev: %w", err)
	}
	if cfg.ReadOnlyRoot {
		// A writable /tmp, unless the sandbox mounts something there itself.
		if !slices.ContainsFunc(cfg.Binds, func(b bind) bool { return b.Target == "/tmp" }) {
			tmp, err := newMount("tmpfs", []string{"mode=1777", "size=64m"}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
			if err != nil {
				return -1, err
			}
			err = attachAt(tmp, root, "/tmp", false)
			unix.Close(tmp)
			if err != nil {
				return -1, fmt.Errorf("/tmp: %w", err)
			}
		}
		if err := unix.MountSetattr(root, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return -1, fmt.Errorf("making the root read-only: %w", err)
		}
	}
	return root, nil
}

// tree returns a detached mount tree of the source: the one the host
// cloned, or a clone of the path made here.
func (s source) tree() (int, error) {
	if s.Path == "" {
		return s.FD, nil
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, s.Path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return -1, fmt.Errorf("cloning %s: %w", s.Path, err)
	}
	return fd, nil
}

// bindInto attaches a bind source at its target in the root: recursive,
// nosuid, nodev, read-only when asked.
func bindInto(root int, b bind) error {
	t, err := b.Source.tree()
	if err != nil {
		return err
	}
	defer unix.Close(t)
	if err := attachAt(t, root, b.Target, b.File); err != nil {
		return err
	}
	attrs := uint64(unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV)
	if b.ReadOnly {
		attrs |= unix.MOUNT_ATTR_RDONLY
	}
	return unix.MountSetattr(t, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: attrs, Propagation: unix.MS_PRIVATE})
}

// attachAt attaches the detached mount m at target inside root, creating
// the mount point (a directory, or an empty file when file is set).
func attachAt(m, root int, target string, file bool) error {
	mp, err := mountpoint(root, target, file)
	if err != nil {
		return err
	}
	defer unix.Close(mp)
	if err := unix.MoveMount(m, "", mp, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("attaching: %w", err)
	}
	return nil
}

// mountpoint opens target inside root as O_PATH, resolving symlinks as if
// root were "/" (a symlink planted by an earlier run cannot lead outside),
// and creates it and its parents as needed.
func mountpoint(root int, target string, file bool) (int, error) {
	rel := strings.TrimPrefix(path.Clean("/"+target), "/")
	if rel == "" {
		return -1, fmt.Errorf("cannot mount over the root")
	}
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(root, rel, how)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	parent := root
	if dir := path.Dir(rel); dir != "." {
		if parent, err = mountpoint(root, dir, false); err != nil {
			return -1, err
		}
		defer unix.Close(parent)
	}
	base := path.Base(rel)
	if file {
		f, err := unix.Openat(parent, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
		if err == nil {
			unix.Close(f)
		} else if !errors.Is(err, unix.EEXIST) {
			return -1, err
		}
	} else if err := unix.Mkdirat(parent, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	return unix.Openat2(root, rel, how)
}

// newMount creates a detached mount of a new filesystem with options
// ("key=value" or a flag) and mount attributes. The kernel's message for a
// refused option is included in the error.
func newMount(fstype string, options []string, attrs int) (int, error) {
	fs, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen %s: %w", fstype, err)
	}
	defer unix.Close(fs)
	for _, o := range options {
		k, v, hasValue := strings.Cut(o, "=")
		if hasValue {
			err = unix.FsconfigSetString(fs, k, v)
		} else {
			err = unix.FsconfigSetFlag(fs, k)
		}
		if err != nil {
			return -1, fmt.Errorf("%s option %s: %w%s", fstype, k, err, fsLog(fs))
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("creating %s: %w%s", fstype, err, fsLog(fs))
	}
	m, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return -1, fmt.Errorf("mounting %s: %w%s", fstype, err, fsLog(fs))
	}
	return m, nil
}

// fsLog drains the messages of a filesystem context.
func fsLog(fs int) string {
	var msgs []string
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fs, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

// pivotRoot makes root the process's root and detaches the old one (with
// everything still mounted under it) from the mount namespace.
func pivotRoot(root int) error {
	if err := unix.Fchdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	return unix.Chdir("/")
}
