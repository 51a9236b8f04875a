package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// save puts img into the store under name: its layers first (each once,
// shared with every image that has it), then its config blob, then the
// record that makes it visible. A failure or a crash at any point leaves
// no visible image; finished layers stay for the next attempt.
func (s *Store) save(ctx context.Context, name string, img v1.Image, open layerSource, progress Progress, source, digest string) (*Image, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("image layers: %w", err)
	}
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) != len(layers) {
		return nil, fmt.Errorf("image config lists %d layers, manifest %d: %w", len(diffIDs), len(layers), errdefs.ErrInvalidArgument)
	}
	release, err := s.Hold(ctx) // prune must not take layers from under us
	if err != nil {
		return nil, err
	}
	defer release()
	chain := chainIDs(diffIDs)
	rec := &Image{
		Name: name, ID: id.String(), Digest: digest, Source: source, Created: time.Now().UTC(),
		Platform: platformOf(cfg), Chain: chain, Config: imageConfig(cfg),
	}
	var lowers []string
	for i, l := range layers {
		n, err := s.ensureLayer(ctx, chain[i], lowers, l, diffIDs[i], open, progress)
		if err != nil {
			return nil, err
		}
		rec.Size += n
		rec.DiffIDs = append(rec.DiffIDs, diffIDs[i].String())
		lowers = append([]string{s.layerFS(chain[i])}, lowers...)
	}
	if err := s.writeBlob(id, rawCfg); err != nil {
		return nil, err
	}
	if rec.Name == "" {
		rec.Name = rec.ID
	}
	if err := s.writeRecord(rec); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	return rec, nil
}

func (s *Store) writeBlob(h v1.Hash, data []byte) error {
	dir := s.dir("blobs", h.Algorithm)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	if err := renameio.WriteFile(filepath.Join(dir, h.Hex), data, 0o600); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	return nil
}

// Config returns the raw config blob of a stored image (for inspect).
func (s *Store) Config(img *Image) ([]byte, error) {
	h, err := v1.NewHash(img.ID)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(s.dir("blobs", h.Algorithm, h.Hex))
}

func platformOf(cfg *v1.ConfigFile) string {
	p := cfg.OS + "/" + cfg.Architecture
	if cfg.Variant != "" {
		p += "/" + cfg.Variant
	}
	return p
}

// imageConfig is the part of the OCI config a sandbox honours.
func imageConfig(cfg *v1.ConfigFile) sandbox.ImageConfig {
	c := cfg.Config
	return sandbox.ImageConfig{
		Env: c.Env, WorkingDir: c.WorkingDir, User: c.User,
		Entrypoint: c.Entrypoint, Cmd: c.Cmd,
	}
}
