package guest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeTree creates files (relative path -> content) under a temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fakeModulesDir mirrors the shape of a depmod'ed tree: virtio_mmio and
// virtio_blk share virtio and virtio_ring; ext4 and rng-core are built in.
func fakeModulesDir(t *testing.T) string {
	return writeTree(t, map[string]string{
		"modules.dep": strings.Join([]string{
			"kernel/drivers/virtio/virtio_ring.ko:",
			"kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko",
			"kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
			"kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
			"kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
			"kernel/net/core/failover.ko:",
			"kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko",
			"kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
			"kernel/fs/overlayfs/overlay.ko.zst:",
			"",
		}, "\n"),
		"modules.builtin": "kernel/fs/ext4/ext4.ko\nkernel/drivers/char/hw_random/rng-core.ko\nkernel/fs/jbd2/jbd2.ko\n",
	})
}

func TestModulesClosureOrder(t *testing.T) {
	dir := fakeModulesDir(t)
	got, err := Modules(dir, "virtio_mmio", "virtio_net")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/drivers/virtio/virtio_ring.ko",
		"kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/virtio/virtio_mmio.ko",
		"kernel/net/core/failover.ko",
		"kernel/drivers/net/net_failover.ko",
		"kernel/drivers/net/virtio_net.ko",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("order:\n got %q\nwant %q", got, want)
	}
}

func TestModulesDedup(t *testing.T) {
	dir := fakeModulesDir(t)
	got, err := Modules(dir, "virtio_blk", "virtio_mmio", "virtio_blk", "virtio", "virtio-blk")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/drivers/virtio/virtio_ring.ko",
		"kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/block/virtio_blk.ko",
		"kernel/drivers/virtio/virtio_mmio.ko",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestModulesDashUnderscore(t *testing.T) {
	dir := fakeModulesDir(t)
	// The file is virtio-rng.ko; both spellings must find it, and a
	// dashed spelling must find an underscored file.
	for _, name := range []string{"virtio_rng", "virtio-rng"} {
		got, err := Modules(dir, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got[len(got)-1] != "kernel/drivers/char/hw_random/virtio-rng.ko" {
			t.Fatalf("%s: got %q", name, got)
		}
	}
	got, err := Modules(dir, "virtio-mmio")
	if err != nil {
		t.Fatal(err)
	}
	if got[len(got)-1] != "kernel/drivers/virtio/virtio_mmio.ko" {
		t.Fatalf("virtio-mmio: got %q", got)
	}
}

func TestModulesBuiltinSkipped(t *testing.T) {
	dir := fakeModulesDir(t)
	got, err := Modules(dir, "ext4", "rng_core", "overlay", "jbd2")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"kernel/fs/overlayfs/overlay.ko.zst"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestModulesUnknown(t *testing.T) {
	dir := fakeModulesDir(t)
	_, err := Modules(dir, "virtio_blk", "no_such_driver")
	if !errors.Is(err, ErrUnknownModule) {
		t.Fatalf("err = %v, want ErrUnknownModule", err)
	}
	if !strings.Contains(err.Error(), "no_such_driver") {
		t.Fatalf("error does not name the module: %v", err)
	}
}

func TestModulesMissingDependency(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"modules.dep": "kernel/a.ko: kernel/b.ko\n",
	})
	// b appears only as a dependency; it is known by path, so the closure
	// still works and lists it first.
	got, err := Modules(dir, "a")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"kernel/b.ko", "kernel/a.ko"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestModulesCycle(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"modules.dep": "kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/a.ko\n",
	})
	if _, err := Modules(dir, "a"); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("err = %v, want a cycle error", err)
	}
}

func TestModulesNoDir(t *testing.T) {
	if _, err := Modules(filepath.Join(t.TempDir(), "missing"), "x"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
}

// Without modules.dep (a bare dpkg-deb -x), dependencies come from the
// modules' own .modinfo; a file that is not ELF must give a clear error.
func TestModulesWithoutDepNeedsModinfo(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"kernel/fs/overlayfs/overlay.ko": "not an ELF file",
		"modules.builtin":                "kernel/fs/ext4/ext4.ko\n",
	})
	if got, err := Modules(dir, "ext4"); err != nil || len(got) != 0 {
		t.Fatalf("built-in: got %q, %v", got, err)
	}
	_, err := Modules(dir, "overlay")
	if err == nil || !strings.Contains(err.Error(), "overlay.ko") {
		t.Fatalf("err = %v, want an error naming overlay.ko", err)
	}
	if _, err := Modules(dir, "nope"); !errors.Is(err, ErrUnknownModule) {
		t.Fatalf("err = %v, want ErrUnknownModule", err)
	}
}
