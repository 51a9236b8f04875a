//go:build linux

package native

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// makeOverlayDirs makes sure <spec.Dir>/ovl/{upper,work} exist, owned by
// the sandbox's root; fresh reports that they were just created (and
// seedUpper must run before the first mount).
func makeOverlayDirs(spec *sandbox.Spec, ids idMap) (fresh bool, err error) {
	ovl := filepath.Join(spec.Dir, overlayName)
	upper, work := filepath.Join(ovl, "upper"), filepath.Join(ovl, "work")
	if _, err := os.Stat(upper); err == nil {
		if err := os.MkdirAll(work, 0o700); err != nil {
			return false, err
		}
		return false, os.Lchown(work, ids.UID, ids.GID)
	}
	for _, d := range []string{ovl, upper, work} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			removeAll(ovl)
			return true, err
		}
		if err := os.Lchown(d, ids.UID, ids.GID); err != nil {
			removeAll(ovl)
			return true, err
		}
	}
	return true, nil
}

// seedUpper fills a fresh upper directory:
//
//   - every directory of the lowers' top level, with the same mode but
//     owned by sandbox root, so that root inside can create files in /root,
//     /home, /etc, ... (overlayfs takes a merged directory's owner from its
//     upper copy; the lowers' files are owned by host ids the sandbox does
//     not map and otherwise look like nobody's). Deeper directories keep
//     the lowers' owner;
//   - /etc/hostname, an /etc/hosts naming the sandbox, and a machine-id of
//     its own.
func seedUpper(spec *sandbox.Spec, ids idMap) error {
	upper := filepath.Join(spec.Dir, overlayName, "upper")
	if err := os.Chmod(upper, 0o755); err != nil {
		return err
	}
	mkdir := func(rel string, mode fs.FileMode, opaque bool) error {
		p := filepath.Join(upper, rel)
		if err := os.Mkdir(p, 0o700); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil
			}
			return err
		}
		if opaque { // while still writable by its owner
			if err := unix.Lsetxattr(p, "user.overlay.opaque", []byte("y"), 0); err != nil {
				return fmt.Errorf("marking /%s opaque: %w", rel, err)
			}
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
		return os.Lchown(p, ids.UID, ids.GID)
	}
	// A directory is mirrored opaque (hiding the lower one) when every
	// lower copy is empty or not searchable by others: overlayfs reads
	// lower directories with the sandbox root's credentials, to which the
	// host's owner is a stranger, so a 0700 lower /root would make the
	// merged /root unreadable even to sandbox root.
	type dirInfo struct {
		mode   fs.FileMode
		opaque bool
	}
	dirs := map[string]*dirInfo{}
	var order []string
	for _, lower := range spec.RootFS.Lowers {
		lower, err := filepath.EvalSymlinks(lower)
		if err != nil {
			return fmt.Errorf("image layer: %w", err)
		}
		top, err := os.ReadDir(lower)
		if err != nil {
			return fmt.Errorf("image layer: %w", err)
		}
		for _, e := range top {
			if !e.IsDir() {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			hidden := info.Mode().Perm()&0o005 != 0o005 || emptyDir(filepath.Join(lower, e.Name()))
			if d, ok := dirs[e.Name()]; ok {
				d.opaque = d.opaque && hidden
				continue
			}
			dirs[e.Name()] = &dirInfo{mode: info.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetgid), opaque: hidden}
			order = append(order, e.Name())
		}
	}
	for _, name := range order {
		if err := mkdir(name, dirs[name].mode, dirs[name].opaque); err != nil {
			return err
		}
	}
	if err := mkdir("etc", 0o755, false); err != nil {
		return err
	}
	var id [16]byte
	rand.Read(id[:])
	files := map[string]string{
		"etc/hostname":   spec.Name + "\n",
		"etc/hosts":      fmt.Sprintf("127.0.0.1\tlocalhost %[1]s\n::1\tlocalhost ip6-localhost ip6-loopback %[1]s\n", spec.Name),
		"etc/machine-id": hex.EncodeToString(id[:]) + "\n",
	}
	for rel, content := range files {
		p := filepath.Join(upper, rel)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
		if err := os.Lchown(p, ids.UID, ids.GID); err != nil {
			return err
		}
	}
	return nil
}

func emptyDir(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return true // unreadable: nothing the sandbox could see
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}

// removeAll removes a tree that may hold directories without permissions
// (overlayfs's work/work is d---------), which an unprivileged owner
// cannot list until it chmods them.
func removeAll(p string) error {
	var err error
	for range 4 {
		if err = os.RemoveAll(p); err == nil {
			return nil
		}
		// WalkDir visits a directory before reading it, so each one is
		// opened up just in time.
		filepath.WalkDir(p, func(q string, d fs.DirEntry, _ error) error {
			if d != nil && d.IsDir() {
				os.Chmod(q, 0o700)
			}
			return nil
		})
	}
	return err
}

// Mount attributes the host gives the trees it clones for a sandbox.
const (
	attrROBind = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	attrRWBind = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
)

// cloneTree clones the mount tree at path (as a detached, private
// recursive bind mount) and applies attrs to it. The init stage attaches
// such trees inside the sandbox; it cannot look the paths up itself when
// running under a uid range that may not traverse the host directories
// leading to them.
func cloneTree(path string, attrs uint64) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("cloning mount of %s: %w", path, err)
	}
	attr := &unix.MountAttr{Attr_set: attrs, Propagation: unix.MS_PRIVATE}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("setting attributes of the mount of %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}
