package ingest

import (
	"fmt"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image"
)

// Fetcher pulls and imports images into one store, with the store's
// options (platform, insecure registries, credentials' environment).
type Fetcher struct {
	s    *image.Store
	opts image.Options
}

// New returns the fetcher of s; it is what image.Options.Fetcher wants.
func New(s *image.Store) image.Fetcher {
	opts := s.Options()
	return &Fetcher{s: s, opts: opts}
}

// NewStore is image.NewStore with this package's fetcher.
func NewStore(root string, opts image.Options) *image.Store {
	opts.Fetcher = New
	return image.NewStore(root, opts)
}

// parseRef parses a user's image reference the way docker does
// (python:3.12 is index.docker.io/library/python:3.12); the store's own
// parser (image.ParseRef) reads every reference the same way.
func (f *Fetcher) parseRef(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	if f.insecure(r.Context().RegistryStr()) {
		r, err = name.ParseReference(ref, name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("image reference %q: %v: %w", ref, err, errdefs.ErrInvalidArgument)
		}
	}
	return r, nil
}

func (f *Fetcher) insecure(registry string) bool {
	return slices.Contains(f.opts.Insecure, registry)
}
