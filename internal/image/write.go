package image

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
)

// The store's write side, for fetchers (package ingest). A fetcher applies
// each missing layer into a directory from NewLayerDir and commits it
// under its chain ID while it holds LockLayer, stores the image config
// with WriteBlob, and makes the image visible with Publish, last: a
// failure or a crash at any point leaves no visible image, and finished
// layers stay for the next attempt. Hold keeps Prune away meanwhile.

// LayerInfo is layers/<chain>/layer.json.
type LayerInfo struct {
	DiffID string `json:"diff_id"`
	Digest string `json:"digest,omitempty"` // of the blob it was unpacked from
	Size   int64  `json:"size"`             // uncompressed bytes
}

// Layer returns what the store knows of an applied layer; an error means
// it is not (completely) there.
func (s *Store) Layer(chain string) (*LayerInfo, error) {
	raw, err := os.ReadFile(filepath.Join(s.layerDir(chain), "layer.json"))
	if err != nil {
		return nil, err
	}
	var m LayerInfo
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// LayerFS is the directory a layer is applied in: an overlayfs lower.
func (s *Store) LayerFS(chain string) string { return s.layerFS(chain) }

// LockLayer serialises the application of one layer across processes.
func (s *Store) LockLayer(ctx context.Context, chain string) (func(), error) {
	return s.lock(ctx, "layer-"+chain, true)
}

// TempDir makes a private directory in the store's work area (on the
// same filesystem as the layers, so that a commit is a rename). Prune
// removes what is left there after a crash.
func (s *Store) TempDir(prefix string) (string, error) {
	if err := os.MkdirAll(s.dir("tmp"), 0o700); err != nil {
		return "", fmt.Errorf("image store: %w", err)
	}
	dir, err := os.MkdirTemp(s.dir("tmp"), prefix)
	if err != nil {
		return "", fmt.Errorf("image store: %w", err)
	}
	return dir, nil
}

// NewLayerDir makes a work directory for a layer; the layer is applied
// into its "fs" subdirectory. Remove it if the layer is not committed.
func (s *Store) NewLayerDir() (string, error) {
	dir, err := s.TempDir("layer-")
	if err != nil {
		return "", err
	}
	if err := os.Mkdir(filepath.Join(dir, "fs"), 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("image store: %w", err)
	}
	return dir, nil
}

// CommitLayer moves a layer applied in dir (from NewLayerDir) into place
// as chain. The caller holds LockLayer(chain).
func (s *Store) CommitLayer(dir, chain string, info LayerInfo) error {
	raw, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "layer.json"), raw, 0o600); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	if err := os.MkdirAll(s.dir("layers"), 0o700); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	if err := os.Rename(dir, s.layerDir(chain)); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	return nil
}

// WriteBlob stores a manifest or config blob under its digest
// (algorithm:hex).
func (s *Store) WriteBlob(digest string, data []byte) error {
	path, err := s.blobPath(digest)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	if err := renameio.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	return nil
}

// Config returns the raw config blob of a stored image (for inspect).
func (s *Store) Config(img *Image) ([]byte, error) {
	path, err := s.blobPath(img.ID)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

func (s *Store) blobPath(digest string) (string, error) {
	alg, hex, _ := strings.Cut(digest, ":")
	if !validDigest(digest) {
		return "", fmt.Errorf("image store: bad digest %q", digest)
	}
	return s.dir("blobs", alg, hex), nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
