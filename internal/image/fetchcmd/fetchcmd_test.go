package fetchcmd

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/image/imagetest"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

// helperStore is a store whose fetches run the real agentkernel-server.
func helperStore(t *testing.T, reg *imagetest.Registry) (*image.Store, string) {
	server := testutil.BuildBinary(t, "agentkernel-server")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	root := t.TempDir()
	opts := image.Options{Fetcher: New(root, func() (string, error) { return server, nil })}
	if reg != nil {
		opts.Insecure = []string{reg.Host}
	}
	return image.NewStore(root, opts), root
}

// recorder is an image.Progress that remembers what it was told.
type recorder struct {
	mu    sync.Mutex
	sizes map[string]int64 // announced
	got   map[string]int64 // bytes written
	done  map[string]error
}

func (r *recorder) Layer(digest string, size int64) (io.Writer, func(error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sizes[digest] = size
	return writerFunc(func(p []byte) {
			r.mu.Lock()
			r.got[digest] += int64(len(p))
			r.mu.Unlock()
		}), func(err error) {
			r.mu.Lock()
			r.done[digest] = err
			r.mu.Unlock()
		}
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

func testImage(t *testing.T) v1.Image {
	return imagetest.Image(t, v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"/bin/sh"}},
		imagetest.Layer(t, imagetest.File("etc/one", "1")), imagetest.Layer(t, imagetest.File("etc/two", "2")))
}

func TestPullRunsInTheHelperAndRelaysProgress(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	img := testImage(t)
	ref := reg.Ref("test/helper:1")
	reg.Push(ref, img)
	s, _ := helperStore(t, reg)

	rec := &recorder{sizes: map[string]int64{}, got: map[string]int64{}, done: map[string]error{}}
	got, err := s.Pull(t.Context(), ref, rec)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := img.ConfigName()
	if got.ID != id.String() || got.Name != ref {
		t.Fatalf("pulled %+v, want ID %s", got, id)
	}
	if stored, err := s.Get(ref); err != nil || stored.ID != got.ID {
		t.Fatalf("not in the store after the helper's pull: %v", err)
	}
	fs, err := s.Resolve(t.Context(), ref)
	if err != nil || len(fs.Lowers) != 2 {
		t.Fatalf("resolve: %v, %d lowers", err, len(fs.Lowers))
	}
	if b, err := os.ReadFile(filepath.Join(fs.Lowers[0], "etc/two")); err != nil || string(b) != "2" {
		t.Fatalf("top layer's file: %q, %v", b, err)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		size, _ := l.Size()
		if rec.sizes[d.String()] != size || rec.got[d.String()] != size {
			t.Errorf("layer %s: announced %d, relayed %d bytes, want %d", d, rec.sizes[d.String()], rec.got[d.String()], size)
		}
		if err, ok := rec.done[d.String()]; !ok || err != nil {
			t.Errorf("layer %s: finished %v, error %v", d, ok, err)
		}
	}
}

func TestHelperErrorsKeepTheirKind(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	s, _ := helperStore(t, reg)
	if _, err := s.Pull(t.Context(), reg.Ref("test/absent:1"), nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing image: %v, want not found", err)
	}
	if _, err := s.Pull(t.Context(), "Bad//Ref", nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad reference: %v, want invalid argument", err)
	}
	if _, err := s.Import(t.Context(), filepath.Join(t.TempDir(), "nothing.tar"), ""); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing archive: %v, want not found", err)
	}
	none := image.NewStore(t.TempDir(), image.Options{Fetcher: New(t.TempDir(), func() (string, error) {
		return "", errdefs.ErrUnavailable
	})})
	if _, err := none.Pull(t.Context(), "alpine", nil); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("no helper binary: %v, want unavailable", err)
	}
}

func TestImportRunsInTheHelper(t *testing.T) {
	img := testImage(t)
	tag, _ := name.NewTag("example.test/imported:2")
	archive := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	s, _ := helperStore(t, nil)
	imgs, err := s.Import(t.Context(), archive, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Name != "example.test/imported:2" {
		t.Fatalf("imported %+v", imgs)
	}
	if _, err := s.Get("example.test/imported:2"); err != nil {
		t.Fatal(err)
	}
}

func TestCancelStopsTheHelperAndLeavesNoWork(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	ref := reg.Ref("test/slow:1")
	reg.Push(ref, testImage(t))
	s, root := helperStore(t, reg)
	stalled, release := reg.Stall()
	defer release()

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { _, err := s.Pull(ctx, ref, nil); errc <- err }()
	select {
	case <-stalled:
	case err := <-errc:
		t.Fatalf("pull ended before its download stalled: %v", err)
	}
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("a cancelled pull succeeded")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the helper did not stop on cancel")
	}
	if _, err := s.Get(ref); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("a cancelled pull left an image: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "images", "tmp")); len(ents) != 0 {
		t.Errorf("the helper left work in progress: %v", ents)
	}
}
