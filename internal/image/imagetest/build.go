package imagetest

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Entry is one tar entry of a test layer.
type Entry struct {
	Name     string
	Type     byte // tar.TypeReg (default), TypeDir, TypeSymlink, TypeLink
	Body     []byte
	Link     string // symlink or hardlink target
	Mode     int64
	UID, GID int
}

// Dir, File, Symlink, Hardlink and Whiteout build entries.
func Dir(name string) Entry        { return Entry{Name: name, Type: tar.TypeDir, Mode: 0o755} }
func File(name, body string) Entry { return Entry{Name: name, Body: []byte(body), Mode: 0o644} }
func Symlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeSymlink, Link: target}
}
func Hardlink(name, target string) Entry     { return Entry{Name: name, Type: tar.TypeLink, Link: target} }
func Whiteout(dir, name string) Entry        { return File(joinName(dir, ".wh."+name), "") }
func Opaque(dir string) Entry                { return File(joinName(dir, ".wh..wh..opq"), "") }
func Executable(name string, b []byte) Entry { return Entry{Name: name, Body: b, Mode: 0o755} }

func joinName(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// Tar writes entries as an uncompressed layer tar.
func Tar(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.Mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{
			Name: e.Name, Typeflag: typ, Linkname: e.Link, Mode: mode, Uid: e.UID, Gid: e.GID,
			ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX,
		}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(e.Body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Layer is a gzip-compressed layer of entries.
func Layer(t testing.TB, entries ...Entry) v1.Layer {
	t.Helper()
	raw := Tar(t, entries...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Image stacks layers (bottom first) under cfg for linux/amd64 (or the
// platform set in cfgFile by WithPlatform).
func Image(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	return ImageFor(t, "linux", "amd64", cfg, layers...)
}

// ImageFor is Image for a given platform.
func ImageFor(t testing.TB, os, arch string, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = os, arch, cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Busybox is Debian's static busybox, the one real userland the tests can
// count on (scripts/test.sh installs busybox-static).
func Busybox(t testing.TB) []byte {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if b, err := os.ReadFile(p); err == nil {
			return b
		}
	}
	t.Skip("busybox is not installed (apt-get install busybox-static)")
	return nil
}

// BusyboxLayer is a small userland: busybox with sh, cat, ls, id, pwd, env
// and echo links, /etc/os-release naming osID, /etc/passwd with root and a
// user "app" (uid 1000), and /tmp.
func BusyboxLayer(t testing.TB, osID string) v1.Layer {
	bb := Busybox(t)
	entries := []Entry{
		Dir("bin"), Executable("bin/busybox", bb),
		Dir("etc"),
		File("etc/os-release", "ID="+osID+"\nNAME=\"agentkernel test image\"\n"),
		File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"),
		File("etc/group", "root:x:0:\napp:x:1000:\n"),
		{Name: "tmp", Type: tar.TypeDir, Mode: 0o1777},
		Dir("root"), Dir("home"), {Name: "home/app", Type: tar.TypeDir, Mode: 0o755, UID: 1000, GID: 1000},
	}
	for _, app := range []string{"sh", "cat", "ls", "id", "pwd", "env", "echo", "true", "false", "stat", "readlink", "touch", "rm", "mkdir", "sleep", "wc", "find", "test"} {
		entries = append(entries, Symlink("bin/"+app, "busybox"))
	}
	return Layer(t, entries...)
}
