package guest

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cavaliergopher/cpio"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// shared is the guest Prepare makes once per test binary: it downloads a
// kernel and busybox, so every test that needs a real guest uses this one.
var shared struct {
	once sync.Once
	dir  string
	g    *Guest
	took time.Duration
	err  error
}

// preparedGuest returns the shared guest, preparing it on first use. Tests
// must not modify it; TestMain removes it.
func preparedGuest(t testing.TB) *Guest {
	t.Helper()
	testutil.RequireRoot(t)
	_, aptErr := exec.LookPath("apt-get")
	_, dpkgErr := exec.LookPath("dpkg-deb")
	testutil.Require(t, aptErr == nil && dpkgErr == nil, "needs apt-get and dpkg-deb (Debian host)")
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "guest-prepared-"); shared.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		shared.g, shared.err = Prepare(ctx, filepath.Join(shared.dir, "guest"), PrepareOptions{})
		shared.took = time.Since(start)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.g
}

func TestPrepare(t *testing.T) {
	g := preparedGuest(t)
	dir := filepath.Dir(g.Kernel)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	// The unpacked kernel tree is ~100MB; only the outputs may stay.
	// Debian's cloud kernel boots through PVH: its vmlinux is there too.
	if want := []string{ManifestFile, InitrdFile, VmlinuxFile, KernelFile}; !g.PVH || !slices.Equal(names, want) { // ReadDir sorts
		t.Errorf("dir holds %q, want %q", names, want)
	}
	st, err := os.Stat(g.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prepared %s (%s %s, busybox %s) in %v; initrd.img %d bytes, %d modules",
		g.KernelRelease, g.KernelPackage, g.KernelPackageVersion, g.BusyboxVersion,
		shared.took.Round(time.Millisecond), st.Size(), len(g.Modules))

	loaded, err := LoadGuest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Kernel != g.Kernel || loaded.Initrd != g.Initrd || loaded.KernelRelease != g.KernelRelease ||
		loaded.KernelPackageVersion != g.KernelPackageVersion || loaded.BusyboxVersion != g.BusyboxVersion ||
		!slices.Equal(loaded.Modules, g.Modules) || !loaded.Created.Equal(g.Created) {
		t.Errorf("loaded %+v\nprepared %+v", loaded, g)
	}
	if g.KernelPackage == "" || g.BusyboxVersion == "" || len(g.Modules) == 0 || time.Since(g.Created) > time.Hour {
		t.Errorf("manifest incomplete: %+v", g)
	}
	if rel, err := bzImageRelease(g.Kernel); err != nil || rel != g.KernelRelease {
		t.Errorf("bzImage header says %q (%v), manifest %q", rel, err, g.KernelRelease)
	}

	f, err := os.Open(g.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	order, entries := readInitramfs(t, f)
	checkParentsFirst(t, order, entries)
	if _, ok := entries["init"]; ok {
		t.Error("base initramfs has an /init")
	}
	if e := entries["bin/busybox"]; e.mode != cpio.TypeReg|0o755 || len(e.data) < 1<<20 {
		t.Errorf("bin/busybox: mode %o, %d bytes", e.mode, len(e.data))
	}
	for _, l := range []string{"bin/sh", "bin/cat", "usr/bin/env"} {
		if e := entries[l]; e.mode != cpio.TypeSymlink|0o777 || e.link != "/bin/busybox" {
			t.Errorf("%s: mode %o link %q", l, e.mode, e.link)
		}
	}
	if !strings.Contains(string(entries["etc/os-release"].data), "ID=agentkernel\n") {
		t.Errorf("os-release:\n%s", entries["etc/os-release"].data)
	}
	list := strings.Fields(string(entries[strings.TrimPrefix(ModuleListPath, "/")].data))
	if len(list) != len(g.Modules) {
		t.Errorf("module list has %d entries, manifest %d", len(list), len(g.Modules))
	}
	for _, m := range list {
		if _, ok := entries[strings.TrimPrefix(m, "/")]; !ok {
			t.Errorf("%s listed but not in the archive", m)
		}
	}
}

// fakeBzImage writes a file with just enough of a bzImage setup header for
// the release to be read from it.
func fakeBzImage(t *testing.T, release string) string {
	t.Helper()
	img := make([]byte, 0x400)
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x20e:], 0x100)
	copy(img[0x300:], release+" (test@example) #1 SMP\x00")
	p := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A user's kernel and initrd are copied verbatim, fetching nothing.
func TestPrepareUserKernelAndInitrd(t *testing.T) {
	kernel := fakeBzImage(t, "6.6.6-user")
	initrd := filepath.Join(t.TempDir(), "initrd")
	if err := os.WriteFile(initrd, []byte("user initrd"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "guest")
	g, err := Prepare(t.Context(), dir, PrepareOptions{Kernel: kernel, Initrd: initrd})
	if err != nil {
		t.Fatal(err)
	}
	if g.KernelRelease != "6.6.6-user" || g.BusyboxVersion != "" || len(g.Modules) != 0 {
		t.Errorf("guest %+v", g)
	}
	for src, dst := range map[string]string{kernel: g.Kernel, initrd: g.Initrd} {
		a, _ := os.ReadFile(src)
		b, err := os.ReadFile(dst)
		if err != nil || string(a) != string(b) {
			t.Errorf("%s is not a copy of %s: %v", dst, src, err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Errorf("dir holds %v, want the three outputs", ents)
	}
	if _, err := LoadGuest(dir); err != nil {
		t.Fatal(err)
	}

	// A failed re-preparation leaves no manifest vouching for a mix.
	if _, err := Prepare(t.Context(), dir, PrepareOptions{Kernel: kernel + ".missing", Initrd: initrd}); err == nil {
		t.Fatal("missing kernel: no error")
	}
	if _, err := LoadGuest(dir); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("after a failed prepare: %v, want ErrNotFound", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".prepare-*")); len(leftovers) != 0 {
		t.Errorf("work dirs left: %q", leftovers)
	}
}

func TestPrepareRejects(t *testing.T) {
	for name, opts := range map[string]PrepareOptions{
		"initrd without kernel":  {Initrd: "/x"},
		"modules with an initrd": {Kernel: "/k", Initrd: "/x", Modules: []string{"e1000"}},
	} {
		dir := t.TempDir()
		if _, err := Prepare(t.Context(), dir, opts); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}

func TestLoadGuestNotPrepared(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadGuest(dir); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("empty dir: %v, want ErrNotFound", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(`{"created":"2025-01-01T00:00:00Z"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadGuest(dir); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("manifest without files: %v, want ErrNotFound", err)
	}
}

func TestBzImageRelease(t *testing.T) {
	if got, err := bzImageRelease(fakeBzImage(t, "6.1.0-56-cloud-amd64")); err != nil || got != "6.1.0-56-cloud-amd64" {
		t.Errorf("got %q, %v", got, err)
	}
	notBz := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(notBz, make([]byte, 0x400), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bzImageRelease(notBz); err == nil {
		t.Error("not a bzImage: no error")
	}
}
