package agent_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/agent"
)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *v1.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
}

func TestFilesRoundTrip(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	ctx := t.Context()
	dir := t.TempDir()
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	copy(data, "\x00\x00\x00nul")
	p := filepath.Join(dir, "sub", "deep", "blob.bin")

	wantCode(t, c.WriteFile(ctx, p, bytes.NewReader(data), 0o640, false), v1.CodeNotFound)
	if err := c.WriteFile(ctx, p, bytes.NewReader(data), 0o640, true); err != nil {
		t.Fatal(err)
	}
	rc, err := c.ReadFile(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (err %v), want %d identical", len(got), err, len(data))
	}
	fi, err := c.Stat(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Type != v1.TypeFile || fi.Size != int64(len(data)) || fi.Mode != 0o640 || fi.Name != "blob.bin" || fi.Path != p {
		t.Fatalf("stat %+v", fi)
	}
	// Overwrite keeps it atomic: no temp files left beside it.
	if err := c.WriteFile(ctx, p, strings.NewReader("short"), 0, false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "short" {
		t.Fatalf("after overwrite: %q", b)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
		t.Fatalf("default mode %v", st.Mode())
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want 1", len(entries))
	}
	// Empty file.
	if err := c.WriteFile(ctx, p+".empty", nil, 0o600, false); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p + ".empty"); err != nil || st.Size() != 0 || st.Mode().Perm() != 0o600 {
		t.Fatal(st, err)
	}
}

func TestFilesDirectories(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	ctx := t.Context()
	dir := t.TempDir()
	d := filepath.Join(dir, "a", "b")

	wantCode(t, c.Mkdir(ctx, d, 0o750, false), v1.CodeNotFound)
	if err := c.Mkdir(ctx, d, 0o750, true); err != nil {
		t.Fatal(err)
	}
	if err := c.Mkdir(ctx, d, 0o750, true); err != nil { // -p: exists is fine
		t.Fatal(err)
	}
	wantCode(t, c.Mkdir(ctx, d, 0o750, false), v1.CodeAlreadyExists)
	if st, _ := os.Stat(d); st.Mode().Perm() != 0o750 {
		t.Fatalf("mode %v", st.Mode())
	}
	writeFile(t, filepath.Join(d, "f"), "x", 0o644)
	if err := os.Symlink("f", filepath.Join(d, "link")); err != nil {
		t.Fatal(err)
	}
	list, err := c.List(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "f" || list[0].Type != v1.TypeFile || list[1].Name != "link" || list[1].Type != v1.TypeSymlink || list[1].Target != "f" {
		t.Fatalf("list %+v", list)
	}
	fi, err := c.Stat(ctx, filepath.Join(d, "link"))
	if err != nil || fi.Type != v1.TypeSymlink || fi.Target != "f" {
		t.Fatalf("stat link %+v %v", fi, err)
	}
	if fi, err := c.Stat(ctx, d); err != nil || fi.Type != v1.TypeDir {
		t.Fatalf("stat dir %+v %v", fi, err)
	}

	_, err = c.ReadFile(ctx, d)
	wantCode(t, err, v1.CodeInvalidArgument)
	_, err = c.List(ctx, filepath.Join(d, "f"))
	wantCode(t, err, v1.CodeInvalidArgument)
	wantCode(t, c.WriteFile(ctx, d, strings.NewReader("x"), 0, false), v1.CodeInvalidArgument)

	wantCode(t, c.Remove(ctx, filepath.Join(dir, "a"), false), v1.CodeFailedPrecondition)
	if err := c.Remove(ctx, filepath.Join(d, "link"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "f")); err != nil {
		t.Fatal("removing a symlink removed its target")
	}
	if err := c.Remove(ctx, filepath.Join(dir, "a"), true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Fatalf("after recursive remove: %v", err)
	}
}

func TestFilesErrors(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	ctx := t.Context()
	missing := filepath.Join(t.TempDir(), "missing")
	_, err := c.ReadFile(ctx, missing)
	wantCode(t, err, v1.CodeNotFound)
	_, err = c.Stat(ctx, missing)
	wantCode(t, err, v1.CodeNotFound)
	_, err = c.List(ctx, missing)
	wantCode(t, err, v1.CodeNotFound)
	wantCode(t, c.Remove(ctx, missing, true), v1.CodeNotFound)
	for _, bad := range []string{"", "relative/path", "/a/../b", "/a//b", "/a/"} {
		_, err = c.Stat(ctx, bad)
		wantCode(t, err, v1.CodeInvalidArgument)
	}
	wantCode(t, c.Remove(ctx, "/", true), v1.CodeInvalidArgument)
	wantCode(t, c.WriteFile(ctx, missing, strings.NewReader(""), 0o10000, false), v1.CodeInvalidArgument)
	if os.Geteuid() != 0 {
		wantCode(t, c.WriteFile(ctx, "/agentkernel-nonroot-write-test", strings.NewReader("x"), 0, false), v1.CodePermissionDenied)
	}
}
