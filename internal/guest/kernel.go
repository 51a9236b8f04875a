package guest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DebianKernelMeta is the metapackage whose dependency names the current
// versioned cloud kernel. We resolve it rather than hard-coding a version so
// security updates are picked up without a code change.
const DebianKernelMeta = "linux-image-cloud-amd64"

// Kernel is an unpacked guest kernel: the image QEMU boots and the module
// tree the initramfs is built from.
type Kernel struct {
	// Version is the kernel release (uname -r), e.g. "6.1.0-56-cloud-amd64".
	// The guest looks for modules under /lib/modules/Version, so it must match.
	Version string
	// Path is the bzImage (boot/vmlinuz-Version).
	Path string
	// ModulesDir is lib/modules/Version in the unpacked tree.
	ModulesDir string
	// ConfigPath is boot/config-Version when the tree has it, else "".
	// Kept so callers can check options such as CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES
	// that decide how the VMM must describe devices.
	ConfigPath string
	// Root is the unpacked tree. For FetchDebianKernel it is a fresh temp
	// directory the caller owns and may remove.
	Root string
	// Package and PackageVersion name the Debian package the kernel came
	// from; empty unless FetchDebianKernel made it.
	Package, PackageVersion string
}

// FetchDebianKernel downloads and unpacks the Debian cloud kernel into a new
// temporary directory under dir. On error nothing is left in dir.
func FetchDebianKernel(ctx context.Context, dir string) (k *Kernel, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "kernel-")
	if err != nil {
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()

	pkg, err := resolveKernelPackage(ctx, DebianKernelMeta)
	if err != nil {
		return nil, err
	}
	root, version, err := fetchDeb(ctx, tmp, pkg)
	if err != nil {
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	k, err = KernelFromDir(root)
	if err != nil {
		return nil, fmt.Errorf("fetch kernel: %s: %w", pkg, err)
	}
	k.Root = tmp
	k.Package, k.PackageVersion = pkg, version
	return k, nil
}

// fetchDeb downloads pkg with apt-get download into dir, unpacks it into
// dir/root and returns that and the package's version. The .deb is deleted
// after extraction because only the unpacked tree is used.
func fetchDeb(ctx context.Context, dir, pkg string) (root, version string, err error) {
	// apt-get download writes into the working directory.
	if _, err := run(ctx, dir, "apt-get", "download", pkg); err != nil {
		return "", "", fmt.Errorf("download %s: %w", pkg, err)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		return "", "", fmt.Errorf("apt-get download %s left %d .deb files, want 1", pkg, len(debs))
	}
	out, err := run(ctx, dir, "dpkg-deb", "-f", debs[0], "Version")
	if err != nil {
		return "", "", fmt.Errorf("reading %s: %w", filepath.Base(debs[0]), err)
	}
	root = filepath.Join(dir, "root")
	if _, err := run(ctx, dir, "dpkg-deb", "-x", debs[0], root); err != nil {
		return "", "", fmt.Errorf("unpack %s: %w", filepath.Base(debs[0]), err)
	}
	if err := os.Remove(debs[0]); err != nil {
		return "", "", err
	}
	return root, strings.TrimSpace(string(out)), nil
}

// resolveKernelPackage names the versioned image package meta depends on;
// downloading the metapackage itself yields only a dependency stub.
func resolveKernelPackage(ctx context.Context, meta string) (string, error) {
	out, err := run(ctx, "", "apt-cache", "depends", meta)
	if err != nil {
		return "", fmt.Errorf("fetch kernel: resolve %s: %w", meta, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// Lines look like "  Depends: linux-image-6.1.0-56-cloud-amd64";
		// alternatives start with '|' and virtual packages are "<name>".
		f := strings.Fields(strings.TrimLeft(sc.Text(), " |"))
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("fetch kernel: %s depends on no linux-image-* package (is the apt index current? try apt-get update)", meta)
}

// run executes name with LC_ALL=C (so output parsing does not depend on the
// locale) and folds the tool's last stderr line into the error.
func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if msg := lastLine(stderr.String()); msg != "" {
			return nil, fmt.Errorf("%s: %w: %s", name, err, msg)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		// apt warns when its _apt sandbox user cannot write to a private
		// temp dir; that is noise, not the reason a command failed.
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "W:") {
			return l
		}
	}
	return ""
}

// KernelFromDir finds the kernel in an already unpacked package tree (a
// dpkg-deb -x of a linux-image package, or the same layout built by hand):
// exactly one boot/vmlinuz-VERSION and its lib/modules/VERSION (or
// usr/lib/modules/VERSION on merged-/usr layouts).
func KernelFromDir(root string) (*Kernel, error) {
	images, err := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if err != nil {
		return nil, fmt.Errorf("kernel in %s: %w", root, err)
	}
	switch len(images) {
	case 0:
		return nil, fmt.Errorf("kernel in %s: %w", root, errNoKernel)
	case 1:
	default:
		return nil, fmt.Errorf("kernel in %s: %d vmlinuz-* images, want exactly 1: %w", root, len(images), errAmbiguousKernel)
	}
	st, err := os.Stat(images[0])
	if err != nil {
		return nil, fmt.Errorf("kernel in %s: %w", root, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("kernel in %s: %s is not a regular file", root, images[0])
	}
	version := strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")
	if version == "" || strings.ContainsAny(version, "/\x00") {
		return nil, fmt.Errorf("kernel in %s: bad image name %q", root, filepath.Base(images[0]))
	}
	k := &Kernel{Version: version, Path: images[0], Root: root}
	for _, d := range []string{"lib/modules", "usr/lib/modules"} {
		p := filepath.Join(root, d, version)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			k.ModulesDir = p
			break
		}
	}
	if k.ModulesDir == "" {
		return nil, fmt.Errorf("kernel in %s: no lib/modules/%s for %s: %w", root, version, filepath.Base(images[0]), errNoModules)
	}
	if p := filepath.Join(root, "boot", "config-"+version); fileExists(p) {
		k.ConfigPath = p
	}
	return k, nil
}

var (
	errNoKernel        = errors.New("no boot/vmlinuz-* found")
	errAmbiguousKernel = errors.New("ambiguous kernel")
	errNoModules       = errors.New("modules directory missing")
)

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// KernelConfig reads a kernel config file (boot/config-VERSION) into a map
// of set options, e.g. "CONFIG_VIRTIO_MMIO" -> "m". Unset options are absent.
func KernelConfig(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kernel config: %w", err)
	}
	cfg := make(map[string]string)
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "CONFIG_") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			cfg[k] = v
		}
	}
	return cfg, nil
}
