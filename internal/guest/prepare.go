package guest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// The files Prepare leaves in its directory.
const (
	KernelFile   = "vmlinuz"
	InitrdFile   = "initrd.img"
	ManifestFile = "guest.json"
)

// PrepareOptions choose what Prepare builds from. The zero value fetches
// Debian's cloud kernel and busybox and builds the initramfs itself.
type PrepareOptions struct {
	// Kernel, when set, is used instead of fetching Debian's: either a
	// kernel image, which must then have the virtio drivers built in since
	// no modules come with it, or an unpacked package tree as
	// KernelFromDir reads, whose modules go into the initramfs.
	Kernel string
	// Initrd, when set (with Kernel), is copied verbatim as the base
	// initramfs instead of building one. The backend still appends the
	// agent as /init at each start, replacing any /init it has, so it need
	// only hold the modules the agent loads (ModuleListPath) and, for
	// sandboxes without an image, a root filesystem.
	Initrd string
	// Modules are loaded in addition to DefaultModules.
	Modules []string
}

// Guest is a prepared guest: a directory holding KernelFile, InitrdFile
// and ManifestFile, which is the rest of Guest.
type Guest struct {
	// Kernel and Initrd are the paths of the directory's files.
	Kernel string `json:"-"`
	Initrd string `json:"-"`

	// KernelRelease is the kernel's uname -r; empty when a kernel given as
	// a file has no bzImage header to read it from.
	KernelRelease string `json:"kernel_release,omitempty"`
	// KernelPackage and KernelPackageVersion name the Debian package the
	// kernel came from, when it was fetched.
	KernelPackage        string `json:"kernel_package,omitempty"`
	KernelPackageVersion string `json:"kernel_package_version,omitempty"`
	// BusyboxVersion is the banner version of the initramfs's busybox,
	// e.g. "v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1)"; empty for a user's
	// initramfs.
	BusyboxVersion string `json:"busybox_version,omitempty"`
	// Modules are the initramfs's modules in load order, relative to
	// /lib/modules/KernelRelease.
	Modules []string `json:"modules,omitempty"`
	// PVH says VmlinuxFile holds the kernel uncompressed, to be booted
	// directly (see ExtractVmlinux).
	PVH     bool      `json:"pvh,omitempty"`
	Created time.Time `json:"created"`
}

// Prepare makes dir (created if missing) a prepared guest: the kernel as
// KernelFile, the base initramfs as InitrdFile — Userland and the closure
// of DefaultModules and opts.Modules, without the agent — and ManifestFile
// describing them. Each file is replaced atomically and the manifest goes
// last (and is removed first), so a directory without one is not, or not
// yet, a guest. What is fetched on the way is unpacked under dir and
// removed before Prepare returns.
func Prepare(ctx context.Context, dir string, opts PrepareOptions) (*Guest, error) {
	if opts.Initrd != "" && opts.Kernel == "" {
		return nil, fmt.Errorf("preparing guest: an initrd needs the kernel it was made for: %w", errdefs.ErrInvalidArgument)
	}
	if opts.Initrd != "" && len(opts.Modules) > 0 {
		return nil, fmt.Errorf("preparing guest: extra modules cannot be added to a given initrd: %w", errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("preparing guest: %w", err)
	}
	// The old manifest would vouch for a kernel and initramfs about to be
	// replaced one at a time.
	if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("preparing guest: %w", err)
	}
	work, err := os.MkdirTemp(dir, ".prepare-")
	if err != nil {
		return nil, fmt.Errorf("preparing guest: %w", err)
	}
	defer os.RemoveAll(work)

	k, err := prepareKernel(ctx, work, opts.Kernel)
	if err != nil {
		return nil, fmt.Errorf("preparing guest: %w", err)
	}
	g := &Guest{
		Kernel:               filepath.Join(dir, KernelFile),
		Initrd:               filepath.Join(dir, InitrdFile),
		KernelRelease:        k.Version,
		KernelPackage:        k.Package,
		KernelPackageVersion: k.PackageVersion,
	}
	if err := copyAtomic(ctx, k.Path, g.Kernel); err != nil {
		return nil, fmt.Errorf("preparing guest: kernel: %w", err)
	}
	// A vmlinux of an earlier kernel must not outlive it.
	vmlinux := filepath.Join(dir, VmlinuxFile)
	if err := os.Remove(vmlinux); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("preparing guest: %w", err)
	}
	if err := ExtractVmlinux(ctx, g.Kernel, vmlinux); err == nil {
		g.PVH = true
	} else if ctx.Err() != nil {
		return nil, fmt.Errorf("preparing guest: %w", ctx.Err())
	}
	if opts.Initrd != "" {
		if err := copyAtomic(ctx, opts.Initrd, g.Initrd); err != nil {
			return nil, fmt.Errorf("preparing guest: initrd: %w", err)
		}
	} else if err := buildBase(ctx, work, k, opts.Modules, g); err != nil {
		return nil, fmt.Errorf("preparing guest: %w", err)
	}
	g.Created = time.Now().UTC().Truncate(time.Second)
	data, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("preparing guest: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, ManifestFile), 0o644, func(w io.Writer) error {
		_, err := w.Write(append(data, '\n'))
		return err
	}); err != nil {
		return nil, fmt.Errorf("preparing guest: %w", err)
	}
	return g, nil
}

// prepareKernel fetches Debian's kernel into work, or reads the user's.
func prepareKernel(ctx context.Context, work, user string) (*Kernel, error) {
	if user == "" {
		return FetchDebianKernel(ctx, work)
	}
	st, err := os.Stat(user)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	if st.IsDir() {
		return KernelFromDir(user)
	}
	// A vmlinux ELF (booted through PVH) has no setup header: its release
	// stays unknown, which only the manifest misses.
	release, _ := bzImageRelease(user)
	return &Kernel{Version: release, Path: user}, nil
}

// buildBase writes g.Initrd from a fetched busybox and k's modules, and
// records both in g.
func buildBase(ctx context.Context, work string, k *Kernel, extra []string, g *Guest) error {
	var mods []string
	if k.ModulesDir != "" {
		var err error
		if mods, err = Modules(k.ModulesDir, slices.Concat(DefaultModules, extra)...); err != nil {
			return err
		}
	} else if len(extra) > 0 {
		return fmt.Errorf("extra modules but the kernel comes without a module tree: %w", errdefs.ErrInvalidArgument)
	}
	bb, err := FetchBusybox(ctx, work)
	if err != nil {
		return err
	}
	if g.BusyboxVersion, err = busyboxVersion(ctx, bb); err != nil {
		return err
	}
	files, err := Userland(bb)
	if err != nil {
		return err
	}
	g.Modules = mods
	return BuildInitramfs(ctx, k, mods, files, g.Initrd)
}

// copyAtomic replaces dst with a copy of src.
func copyAtomic(ctx context.Context, src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return writeAtomic(dst, 0o644, func(w io.Writer) error {
		_, err := io.Copy(ctxWriter{ctx, w}, f)
		return err
	})
}

// bzImageRelease reads the kernel release from a bzImage's setup header:
// kernel_version (at 0x20e) points, less 0x200, at a NUL-terminated
// string that starts with the release ("6.1.0-56-cloud-amd64 (debian-...").
func bzImageRelease(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var hdr [0x210]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return "", fmt.Errorf("%s: not a bzImage: %w", path, err)
	}
	if string(hdr[0x202:0x206]) != "HdrS" {
		return "", fmt.Errorf("%s: not a bzImage", path)
	}
	off := binary.LittleEndian.Uint16(hdr[0x20e:])
	if off == 0 {
		return "", fmt.Errorf("%s: bzImage without a version string", path)
	}
	buf := make([]byte, 256)
	n, err := f.ReadAt(buf, int64(off)+0x200)
	if n == 0 {
		return "", fmt.Errorf("%s: version string: %w", path, err)
	}
	s, _, _ := strings.Cut(string(buf[:n]), "\x00")
	if words := strings.Fields(s); len(words) > 0 {
		return words[0], nil
	}
	return "", fmt.Errorf("%s: empty version string", path)
}

// LoadGuest reads the guest Prepare left in dir. A directory without a
// manifest (never prepared, or interrupted) is not found.
func LoadGuest(dir string) (*Guest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("loading guest from %s: no %s (not prepared): %w", dir, ManifestFile, errdefs.ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("loading guest from %s: %w", dir, err)
	}
	var g Guest
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("loading guest from %s: %s: %w", dir, ManifestFile, err)
	}
	g.Kernel, g.Initrd = filepath.Join(dir, KernelFile), filepath.Join(dir, InitrdFile)
	for _, p := range []string{g.Kernel, g.Initrd} {
		if !fileExists(p) {
			return nil, fmt.Errorf("loading guest from %s: %s missing: %w", dir, filepath.Base(p), errdefs.ErrNotFound)
		}
	}
	return &g, nil
}
