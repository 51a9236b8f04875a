package cli

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// readTar reads a whole tar, failing the test if it is not one.
func readTar(t *testing.T, b []byte) map[string]tarFile {
	t.Helper()
	files := make(map[string]tarFile)
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("reading the export: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s: %v", hdr.Name, err)
		}
		files[hdr.Name] = tarFile{hdr: hdr, body: string(body)}
	}
}

type tarFile struct {
	hdr  *tar.Header
	body string
}

// TestE2EExport exports a sandbox made from an OCI image, with a mounted
// workspace and files written in it, and checks the archive against what
// the sandbox sees.
func TestE2EExport(t *testing.T) {
	e, reg := imageE2E(t)
	ref := reg.Ref("test/export:1")
	reg.Push(ref, layeredImage(t, "exported"))
	ws := t.TempDir()
	os.Chmod(ws, 0o755) // its owner, host root, is nobody in the sandbox
	os.WriteFile(filepath.Join(ws, "host.txt"), []byte("from the host"), 0o644)
	const name = "e2e-export"
	e.ok("create", "-i", ref, "--start", "-v", ws+":/workspace", name)
	defer e.run(nil, "remove", "--force", name)
	e.ok("exec", "-u", "root", name, "--", "sh", "-c", `set -e
mkdir -p /srv/app
echo -n 'made inside' > /srv/app/data.txt
busybox chmod 0750 /srv/app
busybox ln /srv/app/data.txt /srv/app/hard
busybox ln -s ../../etc/os-release /srv/app/rel
busybox mkfifo /srv/app/fifo
echo x > /dev/shm/not-exported`)

	out := t.TempDir()
	tarPath := filepath.Join(out, "fs.tar")
	if o := e.ok("export", name, "-o", tarPath); o != "" {
		t.Errorf("export -o printed %q", o)
	}
	b, err := os.ReadFile(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	files := readTar(t, b)
	body := func(name string) string {
		f, ok := files[name]
		if !ok {
			t.Errorf("%s is not in the export", name)
			return ""
		}
		if f.hdr.Typeflag == tar.TypeLink {
			return files[f.hdr.Linkname].body
		}
		return f.body
	}
	for name, want := range map[string]string{
		"etc/os-release":          "ID=exported\n",
		"srv/app/data.txt":        "made inside",
		"srv/app/hard":            "made inside",
		"workspace/host.txt":      "from the host",
		"opq/new":                 "visible",
		"data/b":                  "linked",
		"usr/lib/through-symlink": "landed",
	} {
		if got := body(name); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if f := files["srv/app/hard"]; f.hdr == nil || f.hdr.Typeflag != tar.TypeLink || f.hdr.Linkname != "srv/app/data.txt" {
		t.Errorf("hardlink: %+v", f.hdr)
	}
	for name, target := range map[string]string{"escape": "/../../../etc/shadow", "srv/app/rel": "../../etc/os-release", "bin/sh": "busybox"} {
		if f := files[name]; f.hdr == nil || f.hdr.Typeflag != tar.TypeSymlink || f.hdr.Linkname != target {
			t.Errorf("symlink %s: %+v", name, f.hdr)
		}
	}
	if f := files["srv/app/"]; f.hdr == nil || f.hdr.Typeflag != tar.TypeDir || f.hdr.Mode != 0o750 {
		t.Errorf("srv/app/: %+v", f.hdr)
	}
	if f := files["srv/app/fifo"]; f.hdr == nil || f.hdr.Typeflag != tar.TypeFifo {
		t.Errorf("fifo: %+v", f.hdr)
	}
	if f := files["bin/busybox"]; f.hdr == nil || f.hdr.Size < 100000 || f.hdr.Mode&0o111 == 0 {
		t.Errorf("bin/busybox: %+v", f.hdr)
	}
	for _, d := range []string{"proc/", "sys/", "dev/"} {
		if f := files[d]; f.hdr == nil || f.hdr.Typeflag != tar.TypeDir {
			t.Errorf("%s is not an empty directory in the export", d)
		}
	}
	for n := range files {
		under := func(d string) bool { return strings.HasPrefix(n, d) && n != d }
		switch {
		case under("proc/"), under("sys/"), under("dev/"):
			t.Errorf("kernel interface exported: %s", n)
		case n == "etc/deleteme", n == "opq/old", strings.Contains(n, ".wh."):
			t.Errorf("deleted file exported: %s", n)
		case n == "etc/shadow", strings.HasPrefix(n, "root/."), strings.HasPrefix(n, "usr/local/go"), strings.HasPrefix(n, "work/"):
			t.Errorf("host file exported: %s", n)
		case strings.HasPrefix(n, "./") && n != "./", strings.HasPrefix(n, "/"), strings.Contains(n, ".."):
			t.Errorf("bad name in the export: %q", n)
		}
	}

	// To stdout, under `sandbox export`, the same archive.
	r := e.run(nil, "sandbox", "export", name)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("export to stdout: exit %d, stderr %q", r.code, r.stderr)
	}
	if again := readTar(t, []byte(r.stdout)); len(again) != len(files) || again["workspace/host.txt"].body != "from the host" {
		t.Errorf("export to stdout: %d entries, want %d", len(again), len(files))
	}

	// Never to a terminal.
	p := startOnPTY(t, e, 24, 80, "export", name)
	// The output may still be in the terminal's buffer when the process is gone.
	if code := p.wait(); code != errdefs.ExitUsage || !p.waitOutput("terminal", 5*time.Second) {
		t.Errorf("export to a terminal: exit %d, output %q", code, p.output())
	}

	// Failures leave nothing: not the file, not a temporary one, and an
	// existing file keeps its content.
	failDir := t.TempDir()
	e.fails(errdefs.ExitUsage, "bad-", "export", "bad-", "-o", filepath.Join(failDir, "x.tar"))
	e.fails(errdefs.ExitNotFound, "not found", "export", "e2e-missing", "-o", filepath.Join(failDir, "x.tar"))
	e.fails(errdefs.ExitUsage, "is a directory", "export", name, "-o", failDir)
	e.ok("stop", name)
	e.fails(errdefs.ExitConflict, "stopped", "export", name, "-o", filepath.Join(failDir, "x.tar"))
	if ents, _ := os.ReadDir(failDir); len(ents) != 0 {
		t.Errorf("failed exports left %v", ents)
	}
	e.fails(errdefs.ExitConflict, "stopped", "export", name, "-o", tarPath)
	if now, err := os.ReadFile(tarPath); err != nil || !bytes.Equal(now, b) {
		t.Errorf("a failed export changed the existing file (%v)", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 1 {
		t.Errorf("a failed export left %v", ents)
	}
	if r := e.run(nil, "export", name); r.code != errdefs.ExitConflict || r.stdout != "" {
		t.Errorf("export of a stopped sandbox to stdout: exit %d, %d bytes out", r.code, len(r.stdout))
	}
	e.ok("remove", name)
}
