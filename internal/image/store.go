package image

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// Store resolves image references to root filesystems under a data root.
// It is safe for concurrent use, also by several processes sharing a root.
type Store struct {
	root string
	// hostRoot is the host filesystem the host image is taken from ("/";
	// tests point it at a fake tree).
	hostRoot string

	mu sync.Mutex // serialises this process's materialisations
}

// NewStore returns the store of the data root root (images live in
// <root>/images).
func NewStore(root string) *Store {
	return &Store{root: root, hostRoot: "/"}
}

// Resolve returns the root filesystem of ref. Only the host pseudo-image
// exists so far; any other reference is ErrNotImplemented.
func (s *Store) Resolve(ctx context.Context, ref string) (sandbox.RootFS, error) {
	if err := ctx.Err(); err != nil {
		return sandbox.RootFS{}, err
	}
	if ref != sandbox.DefaultImage {
		return sandbox.RootFS{}, fmt.Errorf("image %q: OCI images are not yet supported; use --image host: %w", ref, errdefs.ErrNotImplemented)
	}
	return s.resolveHost()
}

func (s *Store) hostDir() string {
	return filepath.Join(s.root, "images", "host")
}
