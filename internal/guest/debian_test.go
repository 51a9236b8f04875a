package guest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// TestDebianKernel runs the real path: apt-get download of the cloud
// kernel, module closure from the unpacked package (which has no
// modules.dep, so this exercises the .modinfo reader on real modules), and
// an initramfs carrying them.
func TestDebianKernel(t *testing.T) {
	testutil.RequireLinux(t)
	testutil.RequireRoot(t)
	_, aptErr := exec.LookPath("apt-get")
	_, dpkgErr := exec.LookPath("dpkg-deb")
	testutil.Require(t, aptErr == nil && dpkgErr == nil, "needs apt-get and dpkg-deb (Debian host)")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()

	start := time.Now()
	k, err := FetchDebianKernel(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fetched and unpacked %s in %v", k.Version, time.Since(start).Round(time.Millisecond))

	if !regexp.MustCompile(`^6\.\d+\.\d+-`).MatchString(k.Version) {
		t.Errorf("version %q does not look like 6.x", k.Version)
	}
	st, err := os.Stat(k.Path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 4<<20 {
		t.Errorf("vmlinuz is only %d bytes", st.Size())
	}
	if debs, _ := filepath.Glob(filepath.Join(k.Root, "*.deb")); len(debs) != 0 {
		t.Errorf(".deb left behind: %q", debs)
	}
	if k.Package == "" || k.PackageVersion == "" {
		t.Errorf("package %q version %q", k.Package, k.PackageVersion)
	}

	// The choices in DefaultModules and WriteInitramfs rest on these.
	cfg, err := KernelConfig(k.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if cfg["CONFIG_RD_GZIP"] != "y" {
		t.Errorf("CONFIG_RD_GZIP=%q: the kernel cannot unpack a gzip initramfs", cfg["CONFIG_RD_GZIP"])
	}
	t.Logf("CONFIG_VIRTIO_MMIO=%s CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=%q CONFIG_MODULE_COMPRESS_NONE=%q",
		cfg["CONFIG_VIRTIO_MMIO"], cfg["CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES"], cfg["CONFIG_MODULE_COMPRESS_NONE"])

	start = time.Now()
	mods, err := Modules(k.ModulesDir, DefaultModules...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("module closure (%v): %s", time.Since(start).Round(time.Millisecond), strings.Join(mods, " "))
	for _, want := range []string{"virtio_mmio", "virtio", "virtio_ring", "virtio_blk", "vmw_vsock_virtio_transport_common"} {
		found := false
		for _, m := range mods {
			if n, _ := moduleNameFromPath(m); n == want {
				found = true
			}
		}
		if !found {
			t.Errorf("closure lacks %s", want)
		}
	}
	// virtio (the bus) must be loaded before the transport that registers
	// devices on it.
	if idx(mods, "virtio.ko") > idx(mods, "virtio_mmio.ko") {
		t.Errorf("virtio after virtio_mmio: %q", mods)
	}

	out := filepath.Join(dir, "initramfs.cpio.gz")
	start = time.Now()
	if err := BuildInitramfs(ctx, k, mods, nil, out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fst, _ := f.Stat()
	t.Logf("initramfs %d bytes in %v", fst.Size(), time.Since(start).Round(time.Millisecond))
	order, entries := readInitramfs(t, f)
	checkParentsFirst(t, order, entries)
	for _, m := range mods {
		name := "lib/modules/" + k.Version + "/" + m
		e, ok := entries[name]
		if !ok {
			t.Errorf("%s missing from the archive", name)
			continue
		}
		src, err := os.ReadFile(filepath.Join(k.ModulesDir, m))
		if err != nil {
			t.Fatal(err)
		}
		if string(e.data) != string(src) {
			t.Errorf("%s differs from the package's file", name)
		}
	}
	list := strings.Fields(string(entries["etc/agentkernel/modules"].data))
	if len(list) != len(mods) {
		t.Errorf("module list has %d entries, want %d", len(list), len(mods))
	}
}

func idx(mods []string, base string) int {
	for i, m := range mods {
		if filepath.Base(m) == base {
			return i
		}
	}
	return -1
}
