package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var (
	t0 = time.Unix(1_600_000_000, 0)
	t1 = time.Unix(1_500_000_000, 123_000_000)
)

// ent is one tar entry: a header and, for regular files, its body.
type ent struct {
	*tar.Header
	body string
}

func reg(name, body string) ent {
	return ent{&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: t0}, body}
}

func dir(name string) ent {
	return ent{Header: &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: t0}}
}

func sym(name, target string) ent {
	return ent{Header: &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: t0}}
}

func hard(name, target string) ent {
	return ent{Header: &tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: t0}}
}

func fifo(name string) ent {
	return ent{Header: &tar.Header{Typeflag: tar.TypeFifo, Name: name, Mode: 0o600, ModTime: t0}}
}

func dev(name string, typ byte, major, minor int64) ent {
	return ent{Header: &tar.Header{Typeflag: typ, Name: name, Mode: 0o660, Devmajor: major, Devminor: minor, ModTime: t0}}
}

// with returns e after f changed its header.
func (e ent) with(f func(h *tar.Header)) ent {
	h := *e.Header
	f(&h)
	e.Header = &h
	return e
}

func mkTar(t testing.TB, es ...ent) []byte {
	t.Helper()
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, e := range es {
		h := *e.Header
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatPAX // keeps sub-second times
		}
		if err := w.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %s: %v", e.Name, err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatalf("tar body %s: %v", e.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// applyTar applies es to a fresh directory on top of lowers.
func applyTar(t testing.TB, opts Options, es []ent, lowers ...string) (string, Stats, error) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "layer")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := Apply(context.Background(), bytes.NewReader(mkTar(t, es...)), dst, lowers, opts)
	return dst, st, err
}

// mustApply is applyTar that fails t on error.
func mustApply(t testing.TB, opts Options, es []ent, lowers ...string) (string, Stats) {
	t.Helper()
	dst, st, err := applyTar(t, opts, es, lowers...)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return dst, st
}

func lstat(t testing.TB, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat: %v", err)
	}
	return &st
}

func absent(t testing.TB, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Errorf("%s exists (err %v), want absent", p, err)
	}
}

func content(t testing.TB, p, want string) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	if string(got) != want {
		t.Errorf("%s = %q, want %q", p, got, want)
	}
}

func fileType(t testing.TB, p string, want uint32) {
	t.Helper()
	if got := lstat(t, p).Mode & unix.S_IFMT; got != want {
		t.Errorf("%s: type %#o, want %#o", p, got, want)
	}
}

func perm(t testing.TB, p string, want uint32) {
	t.Helper()
	if got := lstat(t, p).Mode & 0o7777; got != want {
		t.Errorf("%s: mode %#o, want %#o", p, got, want)
	}
}

func mtime(t testing.TB, p string, want time.Time) {
	t.Helper()
	st := lstat(t, p)
	if got := time.Unix(st.Mtim.Unix()); !got.Equal(want) {
		t.Errorf("%s: mtime %v, want %v", p, got, want)
	}
}

func isWhiteoutAt(t testing.TB, p string) {
	t.Helper()
	if !isWhiteout(lstat(t, p)) {
		t.Errorf("%s is not a 0/0 char device", p)
	}
}

func xattrOf(p, name string) (string, bool) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}

func opaqueAt(t testing.TB, p string, want bool) {
	t.Helper()
	v, ok := xattrOf(p, opaqueXattr)
	if got := ok && v == "y"; got != want {
		t.Errorf("%s: opaque %v, want %v", p, got, want)
	}
}

// emptyDir fails t unless p is an empty directory.
func emptyDir(t testing.TB, p string) {
	t.Helper()
	ents, err := os.ReadDir(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("%s: unexpected %s", p, e.Name())
	}
}

// lowerOf applies es as a base layer and returns its directory.
func lowerOf(t testing.TB, es ...ent) string {
	t.Helper()
	dst, _ := mustApply(t, Options{Privileged: os.Geteuid() == 0}, es)
	return dst
}
