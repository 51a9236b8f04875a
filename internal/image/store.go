package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// Store resolves image references to root filesystems under a data root,
// pulling and importing OCI images into it. It is safe for concurrent use,
// also by several processes sharing a root.
//
// Layout under <root>/images:
//
//	host/                  the host pseudo-image's skeleton
//	blobs/sha256/<hex>     manifests and configs, by digest
//	layers/<chain>/fs      each layer applied once, keyed by its chain ID
//	layers/<chain>/layer.json
//	refs/<key>.json        one record per image name (the last thing a pull writes)
//	locks/                 flock files: one per layer, and the store lock
//	tmp/                   work in progress; anything here is garbage
type Store struct {
	root string
	// hostRoot is the host filesystem the host image is taken from ("/";
	// tests point it at a fake tree).
	hostRoot string
	opts     Options

	mu sync.Mutex // serialises this process's host-image materialisations
}

// Options configure pulls. The zero value pulls from registries over TLS
// with the docker config's credentials, for the host's platform, quietly.
type Options struct {
	// Platform is the platform picked from multi-arch indexes, as
	// os/arch[/variant]; empty means the host's.
	Platform string
	// Insecure lists registries (host[:port]) that may be reached over
	// plain HTTP or with unverified TLS. Nothing is insecure by default.
	Insecure []string
	// Getenv reads AGENTKERNEL_REGISTRY_* credentials (os.Getenv if nil).
	Getenv func(string) string
	// Transport is the HTTP transport for registries (tests); nil means
	// go-containerregistry's default.
	Transport httpRoundTripper
}

// Progress receives pull progress, one layer at a time per call.
type Progress interface {
	// Layer announces a download of size bytes (-1 if unknown) and returns
	// a writer that is fed the bytes as they arrive, and a function called
	// once at the end with the layer's outcome.
	Layer(digest string, size int64) (io.Writer, func(err error))
}

// NewStore returns the store of the data root root (images live in
// <root>/images).
func NewStore(root string, opts Options) *Store {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	return &Store{root: root, hostRoot: "/", opts: opts}
}

// Resolve returns the root filesystem of ref: the host pseudo-image, or an
// OCI image from the store — pulled first if it is not there yet.
func (s *Store) Resolve(ctx context.Context, ref string) (sandbox.RootFS, error) {
	if err := ctx.Err(); err != nil {
		return sandbox.RootFS{}, err
	}
	if ref == sandbox.DefaultImage {
		return s.resolveHost()
	}
	img, err := s.Get(ref)
	if errors.Is(err, errdefs.ErrNotFound) && !isID(ref) {
		img, err = s.Pull(ctx, ref, nil)
	}
	if err != nil {
		return sandbox.RootFS{}, err
	}
	return s.rootFS(ref, img)
}

// rootFS is img in the form backends consume.
func (s *Store) rootFS(ref string, img *Image) (sandbox.RootFS, error) {
	lowers := make([]string, 0, len(img.Chain))
	for i := len(img.Chain) - 1; i >= 0; i-- {
		dir := s.layerFS(img.Chain[i])
		if _, err := os.Stat(dir); err != nil {
			return sandbox.RootFS{}, fmt.Errorf("image %s: layer %d is missing from the store (pull it again): %w", img.Name, i, errdefs.ErrNotFound)
		}
		lowers = append(lowers, dir)
	}
	if len(lowers) == 0 {
		// An image without layers (scratch) still needs a root directory.
		empty, err := s.emptyLayer()
		if err != nil {
			return sandbox.RootFS{}, err
		}
		lowers = append(lowers, empty)
	}
	return sandbox.RootFS{Image: ref, Lowers: lowers, Config: img.Config}, nil
}

func (s *Store) dir(parts ...string) string {
	return filepath.Join(append([]string{s.root, "images"}, parts...)...)
}

func (s *Store) hostDir() string { return s.dir("host") }

func (s *Store) layerDir(chain string) string { return s.dir("layers", chain) }

func (s *Store) layerFS(chain string) string { return s.dir("layers", chain, "fs") }

// emptyLayer is a shared empty directory, the only layer of images that
// have none.
func (s *Store) emptyLayer() (string, error) {
	dir := s.dir("layers", "empty")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("image store: %w", err)
	}
	return dir, nil
}

// parseRef parses a user's image reference the way docker does
// (python:3.12 is index.docker.io/library/python:3.12).
func (s *Store) parseRef(ref string) (name.Reference, error) {
	var opts []name.Option
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	if s.insecure(r.Context().RegistryStr()) {
		r, err = name.ParseReference(ref, name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("image reference %q: %v: %w", ref, err, errdefs.ErrInvalidArgument)
		}
	}
	return r, nil
}

func (s *Store) insecure(registry string) bool {
	for _, r := range s.opts.Insecure {
		if r == registry {
			return true
		}
	}
	return false
}
