package agent

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
)

// A microVM's root filesystem is an overlay: the image's layers (one
// read-only ext4 disk each, shared by every VM of the image) or, for the
// host pseudo-image, the guest's own initramfs userland, under the
// sandbox's writable disk. Everything is mounted under a staging tmpfs
// that the switch to the new root leaves behind, out of the sandbox's
// reach: its processes see the merged root, never the raw layers or the
// upper directory.
const stageDir = "/.agentkernel"

// readOnlyDirs of the guest's own userland stay read-only in the sandbox,
// as the host's are in a native sandbox's host view.
var readOnlyDirs = []string{"/bin", "/sbin", "/usr", "/lib"}

// switchRoot builds the sandbox's root and makes it the root of the
// guest, moving the kernel filesystems mounted by vmInit into it.
func switchRoot(cfg v1.BootConfig) error {
	if err := os.MkdirAll(stageDir, 0o700); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", stageDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
		return fmt.Errorf("staging tmpfs: %w", err)
	}
	disks, err := findDisks(cfg.Layers, 10*time.Second)
	if err != nil {
		return err
	}
	upper := filepath.Join(stageDir, "upper")
	if err := os.Mkdir(upper, 0o700); err != nil {
		return err
	}
	if dev, ok := disks[v1.UpperSerial]; ok {
		if err := unix.Mount(dev, upper, "ext4", 0, ""); err != nil {
			return fmt.Errorf("mounting the sandbox disk %s: %w", dev, err)
		}
	} else if err := unix.Mount("tmpfs", upper, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("in-memory upper layer: %w", err)
	}
	for _, d := range []string{"data", "work"} {
		if err := os.MkdirAll(filepath.Join(upper, d), 0o755); err != nil {
			return err
		}
	}

	var lowers []string
	if cfg.Layers == 0 {
		// The initramfs's own files, without the filesystems mounted on it.
		base := filepath.Join(stageDir, "base")
		if err := bindReadOnly("/", base, 0); err != nil {
			return fmt.Errorf("the guest userland: %w", err)
		}
		lowers = append(lowers, base)
	}
	for i := range cfg.Layers {
		dir := filepath.Join(stageDir, "layer"+strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		dev := disks[v1.LayerSerial(i)]
		if err := unix.Mount(dev, dir, "ext4", unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("mounting image layer %d (%s): %w", i, dev, err)
		}
		lowers = append(lowers, dir)
	}

	root := filepath.Join(stageDir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	// userxattr: the layers carry overlayfs's markers (opaque directories)
	// in user.overlay.*, as the image store writes them for unprivileged
	// mounts.
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,userxattr",
		strings.Join(lowers, ":"), filepath.Join(upper, "data"), filepath.Join(upper, "work"))
	// Mounted writable first, so that mount points can be made; a
	// read-only root is remounted so at the end.
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting the root overlay: %w", err)
	}
	if cfg.Layers == 0 {
		for _, d := range readOnlyDirs {
			src := filepath.Join(lowers[0], d)
			if st, err := os.Lstat(src); err != nil || !st.IsDir() {
				continue
			}
			if err := bindReadOnly(src, filepath.Join(root, d), unix.MS_REC); err != nil {
				return err
			}
		}
	}

	if len(cfg.DNS) > 0 {
		if err := bindResolvConf(root, cfg.DNS); err != nil {
			return err
		}
	}
	for _, m := range []string{"/proc", "/sys", "/dev"} {
		target := filepath.Join(root, m)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m, target, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("moving %s into the root: %w", m, err)
		}
	}
	for _, m := range []struct{ target, mode string }{{"/run", "0755"}, {"/tmp", "1777"}} {
		target := filepath.Join(root, m.target)
		os.MkdirAll(target, 0o755)
		if m.target == "/tmp" && !cfg.ReadOnly {
			continue // on the sandbox's disk, as in a container
		}
		if err := unix.Mount("tmpfs", target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode="+m.mode); err != nil {
			return fmt.Errorf("mounting %s: %w", m.target, err)
		}
	}
	if cfg.ReadOnly {
		if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("making the root read-only: %w", err)
		}
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("moving the root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return os.Chdir("/")
}

// bindResolvConf points the sandbox's resolver at the network path's, with
// a file in the staging tmpfs bound read-only over /etc/resolv.conf, as a
// native sandbox's is.
func bindResolvConf(root string, dns []netip.Addr) error {
	var b strings.Builder
	for _, a := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	b.WriteString("options edns0\n")
	src := filepath.Join(stageDir, "resolv.conf")
	if err := os.WriteFile(src, []byte(b.String()), 0o644); err != nil {
		return err
	}
	target := filepath.Join(root, "etc", "resolv.conf")
	os.MkdirAll(filepath.Dir(target), 0o755)
	// A symlink (to systemd-resolved's file, say) is replaced: it would
	// lead the bind elsewhere.
	if st, err := os.Lstat(target); err != nil || !st.Mode().IsRegular() {
		os.Remove(target)
		if err := os.WriteFile(target, nil, 0o644); err != nil {
			return fmt.Errorf("resolv.conf: %w", err)
		}
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	return unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, "")
}

// bindReadOnly binds src on target (made if missing) read-only.
func bindReadOnly(src, target string, rec uintptr) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND|rec, ""); err != nil {
		return fmt.Errorf("binding %s: %w", src, err)
	}
	if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|rec, ""); err != nil {
		return fmt.Errorf("making %s read-only: %w", target, err)
	}
	return nil
}

// findDisks waits until the guest sees the layer disks and maps the serial
// numbers of its disks to devices. virtio-blk names devices in probe
// order, which need not be the host's order; serials do not move. Loading
// virtio_blk probes every disk there is, so once the layers are seen a
// missing upper disk was never given.
func findDisks(layers int, timeout time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		disks := map[string]string{}
		paths, _ := filepath.Glob("/sys/block/vd*/serial")
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			disks[strings.TrimSpace(string(b))] = filepath.Join("/dev", filepath.Base(filepath.Dir(p)))
		}
		missing := ""
		for i := range layers {
			if _, ok := disks[v1.LayerSerial(i)]; !ok {
				missing = v1.LayerSerial(i)
				break
			}
		}
		if missing == "" {
			return disks, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no disk with serial %s after %v", missing, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
