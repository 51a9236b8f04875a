package guest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cavaliergopher/cpio"
)

type entry struct {
	mode cpio.FileMode
	data []byte
	link string
}

// readInitramfs gunzips and reads back an archive, returning its entries in
// order and by name.
func readInitramfs(t *testing.T, r io.Reader) ([]string, map[string]entry) {
	t.Helper()
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	cr := cpio.NewReader(zr)
	var order []string
	entries := make(map[string]entry)
	for {
		h, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("cpio: %v", err)
		}
		data, err := io.ReadAll(cr)
		if err != nil {
			t.Fatalf("cpio %s: %v", h.Name, err)
		}
		if _, dup := entries[h.Name]; dup {
			t.Fatalf("%s appears twice", h.Name)
		}
		order = append(order, h.Name)
		entries[h.Name] = entry{mode: h.Mode, data: data, link: h.Linkname}
	}
	return order, entries
}

// checkParentsFirst fails unless every entry's parent directory is an
// earlier directory entry: the kernel's unpacker does not create parents.
func checkParentsFirst(t *testing.T, order []string, entries map[string]entry) {
	t.Helper()
	pos := make(map[string]int)
	for i, name := range order {
		pos[name] = i
		if strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") {
			t.Errorf("%q: archive names must be relative without trailing slash", name)
		}
		parent := path.Dir(name)
		if parent == "." {
			continue
		}
		pi, ok := pos[parent]
		if !ok || pi >= i {
			t.Errorf("%s comes before its parent %s", name, parent)
			continue
		}
		if !entries[parent].mode.IsDir() {
			t.Errorf("parent %s is not a directory", parent)
		}
	}
}

func TestWriteInitramfsRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "init")
	initData := bytes.Repeat([]byte("\x7fELF-ish"), 1000)
	if err := os.WriteFile(src, initData, 0o600); err != nil {
		t.Fatal(err)
	}
	files := []File{
		{Path: "/init", Mode: 0o755, Source: src},
		{Path: "/lib/modules/6.1.0-test/kernel/drivers/virtio/virtio.ko", Mode: 0o644, Data: []byte("virtio")},
		{Path: "etc/agentkernel/modules", Mode: 0o644, Data: []byte("/lib/modules/x.ko\n")},
		{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Path: "/lib/modules/6.1.0-test/kernel/fs/odd", Mode: 0o600, Data: []byte("abc")}, // length not a multiple of 4
		{Path: "/empty", Mode: 0o644},
		{Path: "/usr/bin/env", Link: "/bin/busybox"},
		{Path: "/sbin/ip", Mode: fs.ModeSymlink, Link: "../bin/busybox"},
		{Path: "/var/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Path: "/usr/bin/suid", Mode: fs.ModeSetuid | fs.ModeSetgid | 0o755, Data: []byte("s")},
	}
	var buf bytes.Buffer
	if err := WriteInitramfs(&buf, files); err != nil {
		t.Fatal(err)
	}
	order, entries := readInitramfs(t, &buf)
	checkParentsFirst(t, order, entries)

	want := map[string]struct {
		mode cpio.FileMode
		data string
	}{
		"init": {cpio.TypeReg | 0o755, string(initData)},
		"lib/modules/6.1.0-test/kernel/drivers/virtio/virtio.ko": {cpio.TypeReg | 0o644, "virtio"},
		"etc/agentkernel/modules":                                {cpio.TypeReg | 0o644, "/lib/modules/x.ko\n"},
		"lib/modules/6.1.0-test/kernel/fs/odd":                   {cpio.TypeReg | 0o600, "abc"},
		"empty":                                                  {cpio.TypeReg | 0o644, ""},
		"tmp":                                                    {cpio.TypeDir | cpio.ModeSticky | 0o777, ""},
		"lib":                                                    {cpio.TypeDir | 0o755, ""},
		"lib/modules/6.1.0-test/kernel/drivers":                  {cpio.TypeDir | 0o755, ""},
		"etc/agentkernel":                                        {cpio.TypeDir | 0o755, ""},
		"usr/bin/env":                                            {cpio.TypeSymlink | 0o777, ""},
		"sbin/ip":                                                {cpio.TypeSymlink | 0o777, ""},
		"var/tmp":                                                {cpio.TypeDir | cpio.ModeSticky | 0o777, ""},
		"usr/bin/suid":                                           {cpio.TypeReg | cpio.ModeSetuid | cpio.ModeSetgid | 0o755, "s"},
	}
	for name, w := range want {
		got, ok := entries[name]
		if !ok {
			t.Errorf("%s missing; archive has %q", name, order)
			continue
		}
		if got.mode != w.mode {
			t.Errorf("%s: mode %o, want %o", name, got.mode, w.mode)
		}
		if string(got.data) != w.data {
			t.Errorf("%s: content %d bytes, want %d", name, len(got.data), len(w.data))
		}
	}
	for name, link := range map[string]string{"usr/bin/env": "/bin/busybox", "sbin/ip": "../bin/busybox", "init": ""} {
		if got := entries[name].link; got != link {
			t.Errorf("%s: link %q, want %q", name, got, link)
		}
	}
	if len(order) != 23 { // 10 files/dirs given + 13 implied directories
		t.Errorf("%d entries, want 23: %q", len(order), order)
	}
}

func TestWriteInitramfsDeterministic(t *testing.T) {
	files := []File{{Path: "/a/b", Mode: 0o644, Data: []byte("x")}, {Path: "/a/c", Link: "b"}}
	var a, b bytes.Buffer
	if err := WriteInitramfs(&a, files); err != nil {
		t.Fatal(err)
	}
	if err := WriteInitramfs(&b, files); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same input gave different archives")
	}
}

func TestWriteInitramfsRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []File
	}{
		{"dotdot", []File{{Path: "/lib/../etc/x", Data: []byte("x")}}},
		{"empty path", []File{{Path: ""}}},
		{"root", []File{{Path: "/"}}},
		{"duplicate", []File{{Path: "/a", Data: []byte("1")}, {Path: "a", Data: []byte("2")}}},
		{"symlink without target", []File{{Path: "/a", Mode: fs.ModeSymlink | 0o777}}},
		{"directory link", []File{{Path: "/a", Mode: fs.ModeDir | 0o755, Link: "b"}}},
		{"NUL in target", []File{{Path: "/a", Link: "b\x00"}}},
		{"entry under a link", []File{{Path: "/a", Link: "b"}, {Path: "/a/c", Data: []byte("x")}}},
		{"entry under a file", []File{{Path: "/a", Data: []byte("x")}, {Path: "/a/c", Data: []byte("x")}}},
		{"link and file", []File{{Path: "/a", Link: "b"}, {Path: "/a", Data: []byte("x")}}},
		{"missing source", []File{{Path: "/a", Source: "/nonexistent/agentkernel-test"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := WriteInitramfs(io.Discard, tc.files); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// fakeKernel builds a Kernel over a hand-made tree, as --kernel users give.
func fakeKernel(t *testing.T) *Kernel {
	t.Helper()
	root := writeTree(t, map[string]string{
		"boot/vmlinuz-6.1.0-9-test": "bzImage",
		"boot/config-6.1.0-9-test":  "CONFIG_RD_GZIP=y\n# CONFIG_FOO is not set\nCONFIG_VIRTIO_MMIO=m\n",
		"lib/modules/6.1.0-9-test/modules.dep": "kernel/drivers/virtio/virtio.ko:\n" +
			"kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko\n",
		"lib/modules/6.1.0-9-test/kernel/drivers/virtio/virtio.ko":    "virtio module",
		"lib/modules/6.1.0-9-test/kernel/drivers/block/virtio_blk.ko": "blk module",
	})
	k, err := KernelFromDir(root)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKernelFromDir(t *testing.T) {
	k := fakeKernel(t)
	if k.Version != "6.1.0-9-test" {
		t.Errorf("version %q", k.Version)
	}
	if filepath.Base(k.Path) != "vmlinuz-6.1.0-9-test" || filepath.Base(k.ModulesDir) != "6.1.0-9-test" {
		t.Errorf("paths %q %q", k.Path, k.ModulesDir)
	}
	cfg, err := KernelConfig(k.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if cfg["CONFIG_RD_GZIP"] != "y" || cfg["CONFIG_VIRTIO_MMIO"] != "m" || cfg["CONFIG_FOO"] != "" {
		t.Errorf("config %v", cfg)
	}

	if _, err := KernelFromDir(t.TempDir()); !errors.Is(err, errNoKernel) {
		t.Errorf("empty dir: %v", err)
	}
	two := writeTree(t, map[string]string{"boot/vmlinuz-a": "x", "boot/vmlinuz-b": "y"})
	if _, err := KernelFromDir(two); !errors.Is(err, errAmbiguousKernel) {
		t.Errorf("two kernels: %v", err)
	}
	nomods := writeTree(t, map[string]string{"boot/vmlinuz-a": "x"})
	if _, err := KernelFromDir(nomods); !errors.Is(err, errNoModules) {
		t.Errorf("no modules: %v", err)
	}
}

func TestBuildInitramfs(t *testing.T) {
	k := fakeKernel(t)
	mods, err := Modules(k.ModulesDir, "virtio-blk")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := []File{{Path: "/etc/os-release", Mode: 0o644, Data: []byte("ID=test\n")}, {Path: "/bin/sh", Link: "busybox"}}
	out := filepath.Join(dir, "initramfs.gz")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := BuildInitramfs(context.Background(), k, mods, files, out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	order, entries := readInitramfs(t, f)
	checkParentsFirst(t, order, entries)
	if _, ok := entries["init"]; ok {
		t.Error("base initramfs has an /init: the agent is appended per start")
	}
	if string(entries["etc/os-release"].data) != "ID=test\n" || entries["bin/sh"].link != "busybox" {
		t.Errorf("given files missing: %q", order)
	}
	wantList := "/lib/modules/6.1.0-9-test/kernel/drivers/virtio/virtio.ko\n" +
		"/lib/modules/6.1.0-9-test/kernel/drivers/block/virtio_blk.ko\n"
	if got := string(entries["etc/agentkernel/modules"].data); got != wantList {
		t.Errorf("module list:\n%s\nwant:\n%s", got, wantList)
	}
	if got := string(entries["lib/modules/6.1.0-9-test/kernel/drivers/block/virtio_blk.ko"].data); got != "blk module" {
		t.Errorf("virtio_blk.ko content %q", got)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".initramfs.gz*"))
	if len(leftovers) != 0 {
		t.Errorf("temp files left: %q", leftovers)
	}

	// A failure (missing module file) must leave the previous archive and
	// no temp file behind.
	before, _ := os.ReadFile(out)
	if err := BuildInitramfs(context.Background(), k, []string{"kernel/missing.ko"}, files, out); err == nil {
		t.Fatal("missing module: no error")
	}
	after, _ := os.ReadFile(out)
	if !bytes.Equal(before, after) {
		t.Error("failed build changed the output")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".initramfs.gz*")); len(leftovers) != 0 {
		t.Errorf("temp files left after failure: %q", leftovers)
	}
	if err := BuildInitramfs(context.Background(), k, []string{"../escape.ko"}, files, out); err == nil {
		t.Error("escaping module path: no error")
	}
	if err := BuildInitramfs(context.Background(), &Kernel{Path: k.Path}, mods, files, out); err == nil {
		t.Error("modules without a module tree: no error")
	}
	// A kernel with everything built in needs no module tree.
	if err := BuildInitramfs(context.Background(), &Kernel{Path: k.Path}, nil, files, out); err != nil {
		t.Errorf("no modules: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := BuildInitramfs(ctx, k, mods, files, out); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
