package ingest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/image/imagetest"
)

// newTestStore is a store that trusts reg over plain HTTP and sees no
// credentials from this host's environment or docker config.
func newOCIStore(t *testing.T, reg *imagetest.Registry, env map[string]string) *testStore {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	opts := image.Options{Getenv: func(k string) string { return env[k] }}
	if reg != nil {
		opts.Insecure = []string{reg.Host}
	}
	root := t.TempDir()
	return &testStore{NewStore(root, opts), root, opts}
}

// testStore is a store and what it was made from.
type testStore struct {
	*image.Store
	root string
	opts image.Options
}

// onPlatform is s, pulling for platform p.
func onPlatform(s *testStore, p string) *testStore {
	s.opts.Platform = p
	s.Store = NewStore(s.root, s.opts)
	return s
}

// dir is a path in the store's directory.
func (s *testStore) dir(parts ...string) string {
	return filepath.Join(append([]string{s.root, "images"}, parts...)...)
}

// readLayered reads path from a resolved image the way overlayfs would:
// the first lower that has it wins. Good enough for files no upper layer
// whites out, which is what these tests look at.
func readLayered(t *testing.T, s *testStore, ref, path string) string {
	t.Helper()
	fs, err := s.Resolve(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range fs.Lowers {
		if b, err := os.ReadFile(filepath.Join(l, path)); err == nil {
			return string(b)
		}
	}
	t.Fatalf("%s: %s in no layer", ref, path)
	return ""
}

func testImage(t *testing.T, osID string) v1.Image {
	return imagetest.Image(t, v1.Config{
		Env:        []string{"PATH=/bin", "GREETING=hi"},
		WorkingDir: "/home/app",
		User:       "app",
		Entrypoint: []string{"/bin/echo"},
		Cmd:        []string{"from", "cmd"},
	}, imagetest.BusyboxLayer(t, osID), imagetest.Layer(t, imagetest.File("etc/extra", osID)))
}

func TestPullByTagAndDigest(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	img := testImage(t, "tagged")
	ref := reg.Ref("test/busybox:1")
	reg.Push(ref, img)
	s := newOCIStore(t, reg, nil)

	got, err := s.Pull(t.Context(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if got.Digest != want.String() || len(got.Chain) != 2 || got.Source != "pull" || got.Platform != "linux/amd64" {
		t.Fatalf("pulled %+v", got)
	}
	if got.Config.User != "app" || got.Config.WorkingDir != "/home/app" || got.Config.Entrypoint[0] != "/bin/echo" {
		t.Fatalf("config not kept: %+v", got.Config)
	}
	if s := readLayered(t, s, ref, "etc/os-release"); !strings.Contains(s, "ID=tagged") {
		t.Fatalf("os-release: %q", s)
	}
	// By digest, from a new store: same layers, same content.
	s2 := newOCIStore(t, reg, nil)
	byDigest := reg.Host + "/test/busybox@" + want.String()
	if _, err := s2.Pull(t.Context(), byDigest, nil); err != nil {
		t.Fatal(err)
	}
	if s := readLayered(t, s2, byDigest, "etc/extra"); s != "tagged" {
		t.Fatalf("by digest: %q", s)
	}
	// And the tag-pulled image is found by its digest and by its ID.
	if _, err := s.Get(byDigest); err != nil {
		t.Fatal(err)
	}
	if img, err := s.Get(got.ShortID()); err != nil || img.Name != got.Name {
		t.Fatalf("by ID: %v %v", img, err)
	}
}

func TestPullMultiArchIndex(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	amd := imagetest.ImageFor(t, "linux", "amd64", v1.Config{}, imagetest.Layer(t, imagetest.File("arch", "amd64")))
	arm := imagetest.ImageFor(t, "linux", "arm64", v1.Config{}, imagetest.Layer(t, imagetest.File("arch", "arm64")))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	ref := reg.Ref("test/multi:1")
	reg.PushIndex(ref, idx)

	host := newOCIStore(t, reg, nil)
	if _, err := host.Pull(t.Context(), ref, nil); err != nil {
		t.Fatal(err)
	}
	if got := readLayered(t, host, ref, "arch"); got != "amd64" {
		t.Fatalf("host platform picked %q", got)
	}
	armStore := onPlatform(newOCIStore(t, reg, nil), "linux/arm64")
	if _, err := armStore.Pull(t.Context(), ref, nil); err != nil {
		t.Fatal(err)
	}
	if got := readLayered(t, armStore, ref, "arch"); got != "arm64" {
		t.Fatalf("--platform linux/arm64 picked %q", got)
	}
	none := onPlatform(newOCIStore(t, reg, nil), "linux/s390x")
	if _, err := none.Pull(t.Context(), ref, nil); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "linux/s390x") {
		t.Fatalf("missing platform: %v", err)
	}
	bad := onPlatform(newOCIStore(t, reg, nil), "s390x")
	if _, err := bad.Pull(t.Context(), ref, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("malformed platform: %v", err)
	}
}

func TestPullNeedsCredentials(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	ref := reg.Ref("private/img:1")
	reg.RequireAuth("alice", "s3cret")
	reg.Push(ref, testImage(t, "private"))

	s := newOCIStore(t, reg, nil)
	_, err := s.Pull(t.Context(), ref, nil)
	if !errors.Is(err, errdefs.ErrPermissionDenied) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("no credentials: %v", err)
	}
	assertNothingStored(t, s)

	wrong := newOCIStore(t, reg, map[string]string{"AGENTKERNEL_REGISTRY_USERNAME": "alice", "AGENTKERNEL_REGISTRY_PASSWORD": "nope"})
	if _, err := wrong.Pull(t.Context(), ref, nil); !errors.Is(err, errdefs.ErrPermissionDenied) {
		t.Fatalf("wrong password: %v", err)
	}
	// Credentials scoped to another registry are not sent here.
	other := newOCIStore(t, reg, map[string]string{"AGENTKERNEL_REGISTRY": "elsewhere.example", "AGENTKERNEL_REGISTRY_USERNAME": "alice", "AGENTKERNEL_REGISTRY_PASSWORD": "s3cret"})
	if _, err := other.Pull(t.Context(), ref, nil); !errors.Is(err, errdefs.ErrPermissionDenied) {
		t.Fatalf("credentials for another registry: %v", err)
	}
	ok := newOCIStore(t, reg, map[string]string{"AGENTKERNEL_REGISTRY_USERNAME": "alice", "AGENTKERNEL_REGISTRY_PASSWORD": "s3cret"})
	if _, err := ok.Pull(t.Context(), ref, nil); err != nil {
		t.Fatal(err)
	}

	// From the docker config file, as `docker login` leaves it.
	cfgDir := t.TempDir()
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"`+reg.Host+`":{"auth":"YWxpY2U6czNjcmV0"}}}`), 0o600)
	fromFile := NewStore(t.TempDir(), image.Options{Insecure: []string{reg.Host}, Getenv: func(string) string { return "" }})
	t.Setenv("DOCKER_CONFIG", cfgDir)
	if _, err := fromFile.Pull(t.Context(), ref, nil); err != nil {
		t.Fatalf("docker config credentials: %v", err)
	}

	// From a credential helper the docker config names, run as docker runs
	// it: docker-credential-<name> get, the registry on stdin.
	bin := t.TempDir()
	helper := "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread host\necho '{\"ServerURL\":\"'$host'\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}'\n"
	os.WriteFile(filepath.Join(bin, "docker-credential-aktest"), []byte(helper), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	helperDir := t.TempDir()
	os.WriteFile(filepath.Join(helperDir, "config.json"), []byte(`{"credHelpers":{"`+reg.Host+`":"aktest"}}`), 0o600)
	t.Setenv("DOCKER_CONFIG", helperDir)
	viaHelper := NewStore(t.TempDir(), image.Options{Insecure: []string{reg.Host}, Getenv: func(string) string { return "" }})
	if _, err := viaHelper.Pull(t.Context(), ref, nil); err != nil {
		t.Fatalf("credential helper: %v", err)
	}
}

func TestPullCorruptedBlob(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	img := testImage(t, "corrupt")
	ref := reg.Ref("test/corrupt:1")
	reg.Push(ref, img)
	layers, _ := img.Layers()
	d, _ := layers[1].Digest()
	reg.Corrupt(d)

	s := newOCIStore(t, reg, nil)
	_, err := s.Pull(t.Context(), ref, nil)
	if err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("corrupted blob: %v", err)
	}
	if _, err := s.Get(ref); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("a corrupted pull left an image: %v", err)
	}
	assertNoTemp(t, s)
}

func TestPullRegistryDiesMidway(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	img := testImage(t, "flaky")
	ref := reg.Ref("test/flaky:1")
	reg.Push(ref, img)

	// One broken download is retried within the pull.
	reg.CutNext(1)
	s := newOCIStore(t, reg, nil)
	if _, err := s.Pull(t.Context(), ref, nil); err != nil {
		t.Fatalf("a pull that lost one connection: %v", err)
	}

	// A registry that keeps dying: a clean error, nothing visible...
	reg.SetDead(true)
	s2 := newOCIStore(t, reg, nil)
	_, err := s2.Pull(t.Context(), ref, nil)
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("dead registry: %v", err)
	}
	assertNothingStored(t, s2)
	// ...and the next pull, once it is back, succeeds.
	reg.SetDead(false)
	if _, err := s2.Pull(t.Context(), ref, nil); err != nil {
		t.Fatal(err)
	}
	if got := readLayered(t, s2, ref, "etc/extra"); got != "flaky" {
		t.Fatalf("after retry: %q", got)
	}
}

func TestConcurrentPullsDownloadOnce(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	img := testImage(t, "shared")
	ref := reg.Ref("test/shared:1")
	reg.Push(ref, img)
	s := newOCIStore(t, reg, nil)
	other := NewStore(s.root, s.opts) // a second process on the same root

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		st := s.Store
		if i%2 == 1 {
			st = other
		}
		wg.Go(func() { _, errs[i] = st.Pull(context.Background(), ref, nil) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		if n := reg.BlobGets(d); n != 1 {
			t.Errorf("layer %s downloaded %d times", d, n)
		}
	}
}

func TestPullBadReferences(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	s := newOCIStore(t, reg, nil)
	for _, ref := range []string{"UPPER/case", "a b", "x@sha256:zz", "", "repo:bad tag!", "ex ample.com/x:1"} {
		if _, err := s.Pull(t.Context(), ref, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Pull(%q) = %v, want invalid argument", ref, err)
		}
	}
	if _, err := s.Pull(t.Context(), reg.Ref("no/such:1"), nil); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown image: %v", err)
	}
	assertNothingStored(t, s)
}

func TestPlainHTTPOnlyWhenInsecure(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	ref := reg.Ref("test/tls:1")
	reg.Push(ref, testImage(t, "tls"))
	s := newOCIStore(t, nil, nil) // loopback, but not named insecure
	if _, err := s.Pull(t.Context(), ref, nil); err == nil {
		t.Fatal("pulled over plain HTTP from a registry nobody named insecure")
	}
	assertNothingStored(t, s)
}

func TestResolvePullsMissingImage(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	ref := reg.Ref("test/auto:1")
	reg.Push(ref, testImage(t, "auto"))
	s := newOCIStore(t, reg, nil)
	fs, err := s.Resolve(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs.Lowers) != 2 || fs.Config.User != "app" || fs.Image != ref {
		t.Fatalf("rootfs %+v", fs)
	}
}

// assertNothingStored checks a failed pull left no image, no layer and no
// temporary files.
func assertNothingStored(t *testing.T, s *testStore) {
	t.Helper()
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Fatalf("images after a failed pull: %v", imgs)
	}
	if ents, _ := os.ReadDir(s.dir("layers")); len(ents) != 0 {
		t.Fatalf("layers after a failed pull: %v", ents)
	}
	assertNoTemp(t, s)
}

func assertNoTemp(t *testing.T, s *testStore) {
	t.Helper()
	if ents, _ := os.ReadDir(s.dir("tmp")); len(ents) != 0 {
		t.Fatalf("temporary files left: %v", ents)
	}
}
