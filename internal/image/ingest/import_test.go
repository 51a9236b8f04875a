package ingest

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image/imagetest"
)

// dockerSave writes img as `docker save` does, tagged tag.
func dockerSave(t *testing.T, tag string, img v1.Image) string {
	t.Helper()
	tg, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(path, tg, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// ociLayout writes img as an OCI image layout directory named ref.
func ociLayout(t *testing.T, ref string, img v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{annotationRefName: ref})); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tarDir tars a directory tree (regular files and directories).
func tarDir(t *testing.T, dir string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h, _ := tar.FileInfoHeader(fi, "")
		h.Name = rel
		tw.WriteHeader(h)
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			tw.Write(b)
		}
		return nil
	})
	tw.Close()
	path := filepath.Join(t.TempDir(), "layout.tar")
	os.WriteFile(path, buf.Bytes(), 0o600)
	return path
}

func TestImportDockerSave(t *testing.T) {
	s := newOCIStore(t, nil, nil)
	path := dockerSave(t, "example.com/tools/busybox:1", testImage(t, "saved"))
	imgs, err := s.Import(t.Context(), path, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Name != "example.com/tools/busybox:1" || imgs[0].Source != "import" {
		t.Fatalf("imported %+v", imgs)
	}
	if got := readLayered(t, s, "example.com/tools/busybox:1", "etc/os-release"); !strings.Contains(got, "ID=saved") {
		t.Fatalf("os-release %q", got)
	}
	// --tag renames; the layers are shared, not unpacked again.
	before, _ := os.ReadDir(s.dir("layers"))
	if _, err := s.Import(t.Context(), path, "mine:latest"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadDir(s.dir("layers"))
	if len(after) != len(before) {
		t.Fatalf("layers unpacked twice: %d then %d", len(before), len(after))
	}
	if _, err := s.Get("mine"); err != nil {
		t.Fatal(err)
	}
}

func TestImportOCILayout(t *testing.T) {
	dir := ociLayout(t, "example.com/tools/layout:2", testImage(t, "layout"))
	for name, path := range map[string]string{"directory": dir, "tar": tarDir(t, dir)} {
		t.Run(name, func(t *testing.T) {
			s := newOCIStore(t, nil, nil)
			imgs, err := s.Import(t.Context(), path, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(imgs) != 1 || imgs[0].Name != "example.com/tools/layout:2" || imgs[0].Digest == "" {
				t.Fatalf("imported %+v", imgs)
			}
			if got := readLayered(t, s, "example.com/tools/layout:2", "etc/extra"); got != "layout" {
				t.Fatalf("etc/extra %q", got)
			}
		})
	}
}

func TestImportRejectsBadArchives(t *testing.T) {
	outside := t.TempDir()
	planted := filepath.Join(outside, "planted")
	os.WriteFile(planted, []byte("host"), 0o600)

	evil := func(entries ...imagetest.Entry) v1.Image {
		return imagetest.Image(t, v1.Config{}, imagetest.Layer(t, entries...))
	}
	saved := dockerSave(t, "ok:1", testImage(t, "whole"))
	raw, _ := os.ReadFile(saved)
	truncated := filepath.Join(t.TempDir(), "truncated.tar")
	os.WriteFile(truncated, raw[:len(raw)*2/3], 0o600)
	notATar := filepath.Join(t.TempDir(), "junk.tar")
	os.WriteFile(notATar, []byte("this is not an archive"), 0o600)

	cases := map[string]struct {
		path string
		kind error
	}{
		"dotdot path": {dockerSave(t, "evil:1", evil(imagetest.File("../../../../../../"+planted, "pwned"))), errdefs.ErrInvalidArgument},
		"through an absolute symlink": {dockerSave(t, "evil:2", evil(
			imagetest.Symlink("escape", outside), imagetest.File("escape/planted", "pwned"))), nil},
		"truncated":    {truncated, errdefs.ErrInvalidArgument},
		"not a tar":    {notATar, errdefs.ErrInvalidArgument},
		"missing file": {filepath.Join(t.TempDir(), "nope.tar"), errdefs.ErrNotFound},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s := newOCIStore(t, nil, nil)
			_, err := s.Import(t.Context(), c.path, "")
			if c.kind != nil {
				if !errors.Is(err, c.kind) {
					t.Fatalf("Import = %v, want %v", err, c.kind)
				}
				assertNothingStored(t, s)
			}
			if b, _ := os.ReadFile(planted); string(b) != "host" {
				t.Fatalf("the archive wrote outside the store: planted file now %q", b)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 1 {
				t.Fatalf("the archive created files outside the store: %v", ents)
			}
		})
	}
}

func TestRemoveAndPrune(t *testing.T) {
	s := newOCIStore(t, nil, nil)
	base := imagetest.BusyboxLayer(t, "base")
	a := imagetest.Image(t, v1.Config{}, base, imagetest.Layer(t, imagetest.File("a", "a")))
	b := imagetest.Image(t, v1.Config{}, base, imagetest.Layer(t, imagetest.File("b", "b")))
	if _, err := s.Import(t.Context(), dockerSave(t, "a:1", a), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(t.Context(), dockerSave(t, "b:1", b), ""); err != nil {
		t.Fatal(err)
	}
	layers := func() int { e, _ := os.ReadDir(s.dir("layers")); return len(e) }
	if n := layers(); n != 3 {
		t.Fatalf("%d layers for two images sharing a base, want 3", n)
	}
	fsB, err := s.Resolve(t.Context(), "b:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove("a:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove("b:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove("b:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	// A sandbox still uses b's layers: prune keeps them, drops a's own.
	rep, err := s.Prune(t.Context(), func() ([]string, error) { return fsB.Lowers, nil })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Layers != 1 || layers() != 2 || rep.Blobs != 2 {
		t.Fatalf("prune with b in use: %+v, %d layers left", rep, layers())
	}
	for _, l := range fsB.Lowers {
		if _, err := os.Stat(l); err != nil {
			t.Fatalf("prune removed a layer in use: %v", err)
		}
	}
	rep, err = s.Prune(t.Context(), func() ([]string, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Layers != 2 || layers() != 0 {
		t.Fatalf("final prune: %+v, %d layers left", rep, layers())
	}
}
