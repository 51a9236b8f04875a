package guest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// DefaultModules is what a QEMU -M microvm guest needs from the Debian cloud
// kernel before the agent can serve. Checked against
// linux-image-6.1.0-56-cloud-amd64 (6.1.192-2); dependencies such as virtio,
// virtio_ring, net_failover and vmw_vsock_virtio_transport_common are pulled
// in by Modules, so only the leaves are named.
//
// Left out because that kernel builds them in: ext4 (CONFIG_EXT4_FS=y, the
// root disk's filesystem) and the hw_random core (CONFIG_HW_RANDOM=y, module
// name rng-core). Modules skips built-ins anyway, so an older or newer kernel
// that makes them modular only needs them added here.
var DefaultModules = []string{
	// microvm has no PCI bus: every virtio device sits on virtio-mmio, which
	// is =m here. The kernel lacks CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, so the
	// VMM must keep ACPI on (microvm's default) for the devices to be found.
	"virtio_mmio",
	// The image's ext4 root disk and the sandbox's copy-on-write disk.
	"virtio_blk",
	// virtio-serial: the agent's channel where the host has no vhost-vsock
	// (as on the development machines), and hvc consoles.
	"virtio_console",
	// Sandbox networking (tap or user-mode) when the profile grants it.
	"virtio_net",
	// The agent composes the read-only image with a writable upper layer.
	"overlay",
	// The agent's channel where vhost-vsock exists: AF_VSOCK core plus its
	// virtio transport (which pulls in the shared transport code).
	"vsock",
	"vmw_vsock_virtio_transport",
	// Entropy from the host so getrandom() in the guest does not block at
	// boot on a machine with few interrupts (TCG guests especially).
	"virtio_rng",
}

// Modules resolves names (module names as modprobe takes them, '-' and '_'
// interchangeable) to the module files that must be loaded, relative to
// modulesDir, dependencies before the modules that need them, each once.
// Names built into the kernel (modules.builtin) are skipped without error;
// a name that is neither built in nor a module file is an error.
//
// Dependencies come from modules.dep when depmod has run; otherwise (a raw
// dpkg-deb -x, which is what FetchDebianKernel produces) from the depends=
// field of each needed module's .modinfo section. The Debian cloud kernel
// ships uncompressed .ko files (CONFIG_MODULE_COMPRESS_NONE=y); .ko.gz,
// .ko.xz and .ko.zst are accepted as file names, and their dependencies are
// readable without modules.dep for gz and zst only.
func Modules(modulesDir string, names ...string) ([]string, error) {
	idx, err := loadModuleIndex(modulesDir)
	if err != nil {
		return nil, err
	}
	const (
		visiting = 1
		done     = 2
	)
	state := make(map[string]int)
	var order []string
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("modules: dependency cycle: %s -> %s", strings.Join(chain, " -> "), name)
		}
		path, ok := idx.paths[name]
		if !ok {
			if idx.builtin[name] {
				state[name] = done
				return nil
			}
			if len(chain) > 0 {
				return fmt.Errorf("modules: %s (needed by %s): %w", name, chain[len(chain)-1], ErrUnknownModule)
			}
			return fmt.Errorf("modules: %s: %w", name, ErrUnknownModule)
		}
		state[name] = visiting
		deps, err := idx.deps(name)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, append(slices.Clip(chain), name)); err != nil {
				return err
			}
		}
		state[name] = done
		order = append(order, path)
		return nil
	}
	for _, n := range names {
		if err := visit(normalizeModName(n), nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// ErrUnknownModule means a name is neither a module file nor built in.
var ErrUnknownModule = errors.New("no such module and not built in")

// normalizeModName folds '-' into '_' as modprobe does; the kernel itself
// treats both as equal in module names.
func normalizeModName(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "-", "_")
}

// moduleNameFromPath turns "kernel/drivers/char/hw_random/virtio-rng.ko.xz"
// into "virtio_rng".
func moduleNameFromPath(p string) (string, bool) {
	base := filepath.Base(p)
	for _, ext := range []string{".ko", ".ko.gz", ".ko.xz", ".ko.zst"} {
		if strings.HasSuffix(base, ext) {
			return normalizeModName(strings.TrimSuffix(base, ext)), true
		}
	}
	return "", false
}

type moduleIndex struct {
	dir     string
	paths   map[string]string   // name -> path relative to dir
	builtin map[string]bool     // names in modules.builtin
	dep     map[string][]string // from modules.dep; nil when absent
}

func loadModuleIndex(dir string) (*moduleIndex, error) {
	idx := &moduleIndex{dir: dir, paths: make(map[string]string), builtin: make(map[string]bool)}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("modules: %s is not a directory", dir)
	}
	// A kernel without modules.builtin is possible (everything modular or a
	// hand-made tree); it only means no name is known to be built in.
	if err := readLines(filepath.Join(dir, "modules.builtin"), func(line string) error {
		if name, ok := moduleNameFromPath(line); ok {
			idx.builtin[name] = true
		}
		return nil
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("modules: %w", err)
	}

	err := readLines(filepath.Join(dir, "modules.dep"), func(line string) error {
		mod, deps, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("malformed line %q", line)
		}
		name, ok := moduleNameFromPath(mod)
		if !ok {
			return fmt.Errorf("malformed line %q", line)
		}
		if idx.dep == nil {
			idx.dep = make(map[string][]string)
		}
		mod = relModPath(dir, mod)
		idx.paths[name] = mod
		var dn []string
		for _, d := range strings.Fields(deps) {
			n, ok := moduleNameFromPath(d)
			if !ok {
				return fmt.Errorf("malformed dependency %q of %s", d, mod)
			}
			idx.paths[n] = relModPath(dir, d)
			dn = append(dn, n)
		}
		idx.dep[name] = dn
		return nil
	})
	switch {
	case err == nil:
		if idx.dep == nil {
			idx.dep = make(map[string][]string)
		}
		return idx, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("modules: modules.dep: %w", err)
	}

	// No depmod output: find every module file by name; dependencies are
	// read lazily from .modinfo for just the modules asked for.
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name, ok := moduleNameFromPath(p)
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if prev, dup := idx.paths[name]; dup {
			return fmt.Errorf("module %s is both %s and %s", name, prev, rel)
		}
		idx.paths[name] = rel
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("modules: scan %s: %w", dir, err)
	}
	return idx, nil
}

// relModPath accepts both the relative paths modern depmod writes and the
// absolute /lib/modules/VERSION/... paths very old ones did.
func relModPath(dir, p string) string {
	if strings.HasPrefix(p, "/") {
		if i := strings.Index(p, "/kernel/"); i >= 0 {
			return p[i+1:]
		}
		if i := strings.Index(p, "/extra/"); i >= 0 {
			return p[i+1:]
		}
		if i := strings.Index(p, "/updates/"); i >= 0 {
			return p[i+1:]
		}
	}
	return p
}

func (idx *moduleIndex) deps(name string) ([]string, error) {
	if idx.dep != nil {
		return idx.dep[name], nil
	}
	rel := idx.paths[name]
	info, err := readModinfo(filepath.Join(idx.dir, filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("modules: %s: %w", rel, err)
	}
	var deps []string
	for _, kv := range info {
		if v, ok := strings.CutPrefix(kv, "depends="); ok {
			for _, d := range strings.Split(v, ",") {
				if d = normalizeModName(d); d != "" {
					deps = append(deps, d)
				}
			}
		}
	}
	return deps, nil
}

// readModinfo returns the NUL-separated key=value strings of a module's
// .modinfo section, decompressing .ko.gz and .ko.zst first.
func readModinfo(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.ReaderAt = f
	switch {
	case strings.HasSuffix(path, ".ko.gz"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(data)
	case strings.HasSuffix(path, ".ko.zst"):
		zr, err := zstd.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		data, err := io.ReadAll(zr)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(data)
	case strings.HasSuffix(path, ".ko.xz"):
		return nil, errors.New("xz-compressed module and no modules.dep: run depmod -b on the tree first")
	}
	ef, err := elf.NewFile(r)
	if err != nil {
		return nil, err
	}
	sec := ef.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf(".modinfo: %w", err)
	}
	var out []string
	for _, s := range bytes.Split(data, []byte{0}) {
		if len(s) > 0 {
			out = append(out, string(s))
		}
	}
	return out, nil
}

func readLines(path string, fn func(string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	return sc.Err()
}
