package ingest

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// save puts img into the store under name: its layers first (each once,
// shared with every image that has it), then its config blob, then the
// record that makes it visible. A failure or a crash at any point leaves
// no visible image; finished layers stay for the next attempt.
func (f *Fetcher) save(ctx context.Context, name string, img v1.Image, open layerSource, progress image.Progress, source, digest string) (*image.Image, error) {
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
	release, err := f.s.Hold(ctx) // prune must not take layers from under us
	if err != nil {
		return nil, err
	}
	defer release()
	chain := chainIDs(diffIDs)
	rec := &image.Image{
		Name: name, ID: id.String(), Digest: digest, Source: source, Created: time.Now().UTC(),
		Platform: platformOf(cfg), Chain: chain, Config: imageConfig(cfg),
	}
	var lowers []string
	for i, l := range layers {
		n, err := f.ensureLayer(ctx, chain[i], lowers, l, diffIDs[i], open, progress)
		if err != nil {
			return nil, err
		}
		rec.Size += n
		rec.DiffIDs = append(rec.DiffIDs, diffIDs[i].String())
		lowers = append([]string{f.s.LayerFS(chain[i])}, lowers...)
	}
	if err := f.s.WriteBlob(id.String(), rawCfg); err != nil {
		return nil, err
	}
	if rec.Name == "" {
		rec.Name = rec.ID
	}
	if err := f.s.Publish(rec); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	return rec, nil
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
