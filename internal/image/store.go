package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"

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
	fetcher  Fetcher

	mu sync.Mutex // serialises this process's host-image materialisations
}

// Options configure the store and its fetcher. The zero value pulls from
// registries over TLS with the docker config's credentials, for the host's
// platform, quietly.
type Options struct {
	// Fetcher makes the store's fetcher (pulls and imports); nil means the
	// store holds only what is already in it and the host image.
	Fetcher func(*Store) Fetcher
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
	Transport http.RoundTripper
}

// Fetcher brings images into a store. The registry client lives behind
// this interface so that a binary which only runs sandboxes (the CLI)
// does not link it: the CLI's fetcher runs agentkernel-server to pull.
type Fetcher interface {
	// Pull downloads ref from its registry, telling progress (if not nil)
	// about each layer it downloads.
	Pull(ctx context.Context, ref string, progress Progress) (*Image, error)
	// Import stores the images of a docker save archive or an OCI layout;
	// tag, if set, names the single image it holds.
	Import(ctx context.Context, path, tag string) ([]*Image, error)
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
	s := &Store{root: root, hostRoot: "/", opts: opts}
	if opts.Fetcher != nil {
		s.fetcher = opts.Fetcher(s)
	}
	return s
}

// Options returns the options the store was made with.
func (s *Store) Options() Options { return s.opts }

// Pull downloads ref from its registry into the store and returns it,
// telling progress (if not nil) about each layer it downloads. Layers
// already in the store are not downloaded again.
func (s *Store) Pull(ctx context.Context, ref string, progress Progress) (*Image, error) {
	if s.fetcher == nil {
		return nil, fmt.Errorf("pulling %s: this store has no registry client: %w", ref, errdefs.ErrNotImplemented)
	}
	return s.fetcher.Pull(ctx, ref, progress)
}

// Import stores the images of a `docker save` archive (plain or gzipped)
// or an OCI image layout (a directory, or a tar of one), without a
// registry. tag, if set, names the image (the archive must then hold
// exactly one); otherwise the names recorded in the archive are used.
func (s *Store) Import(ctx context.Context, path, tag string) ([]*Image, error) {
	if s.fetcher == nil {
		return nil, fmt.Errorf("importing %s: this store has no image importer: %w", path, errdefs.ErrNotImplemented)
	}
	return s.fetcher.Import(ctx, path, tag)
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
