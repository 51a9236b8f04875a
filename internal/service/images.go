package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/agentkernel-go/agentkernel/internal/detect"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// PullImage downloads an image into the store, telling progress (if not
// nil) about each layer.
func (m *Manager) PullImage(ctx context.Context, ref string, progress image.Progress) (*image.Image, error) {
	return m.opts.Images.Pull(ctx, ref, progress)
}

// EnsureImage pulls ref unless the store has it (or it is the host image).
func (m *Manager) EnsureImage(ctx context.Context, ref string, progress image.Progress) error {
	if ref == "" || ref == sandbox.DefaultImage {
		return nil
	}
	_, err := m.opts.Images.Get(ref)
	if errors.Is(err, errdefs.ErrNotFound) {
		_, err = m.opts.Images.Pull(ctx, ref, progress)
	}
	return err
}

// ImportImages stores the images of a docker save archive or an OCI
// layout; tag, if set, names the single image it holds.
func (m *Manager) ImportImages(ctx context.Context, path, tag string) ([]*image.Image, error) {
	return m.opts.Images.Import(ctx, path, tag)
}

// Images lists the stored images.
func (m *Manager) Images(ctx context.Context) ([]*image.Image, error) {
	return m.opts.Images.List()
}

// InspectImage returns a stored image and its raw OCI config.
func (m *Manager) InspectImage(ctx context.Context, ref string) (*image.Image, []byte, error) {
	img, err := m.opts.Images.Get(ref)
	if err != nil {
		return nil, nil, err
	}
	raw, err := m.opts.Images.Config(img)
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: reading its config: %w", img.Name, err)
	}
	return img, raw, nil
}

// RemoveImage removes an image's name (every name, given an ID). An image
// a sandbox was made from stays unless force is set; even then its layers
// stay until no sandbox uses them.
func (m *Manager) RemoveImage(ctx context.Context, ref string, force bool) ([]*image.Image, error) {
	if !force {
		img, err := m.opts.Images.Get(ref)
		if err != nil {
			return nil, err
		}
		users, err := m.imageUsers(img)
		if err != nil {
			return nil, err
		}
		if len(users) > 0 {
			return nil, fmt.Errorf("image %s is used by sandbox %s (remove it first, or use --force): %w",
				img.Name, strings.Join(users, ", "), errdefs.ErrFailedPrecondition)
		}
	}
	return m.opts.Images.Remove(ref)
}

// PruneImages removes layers and blobs that no image and no sandbox uses.
func (m *Manager) PruneImages(ctx context.Context) (image.PruneReport, error) {
	rep, err := m.opts.Images.Prune(ctx, func() ([]string, error) {
		recs, err := m.store.List()
		var inUse []string
		for _, r := range recs {
			inUse = append(inUse, r.RootFS.Lowers...)
		}
		return inUse, err
	})
	if err != nil {
		return rep, err
	}
	for _, b := range m.opts.Registry.Backends() {
		if p, ok := b.(sandbox.CachePruner); ok {
			if err := p.PruneCache(ctx); err != nil {
				return rep, fmt.Errorf("pruning the %s backend's cache: %w", b.Type(), err)
			}
		}
	}
	return rep, nil
}

// imageUsers names the sandboxes made from img.
func (m *Manager) imageUsers(img *image.Image) ([]string, error) {
	recs, err := m.store.List()
	if err != nil {
		return nil, err
	}
	if len(img.Chain) == 0 {
		return nil, nil
	}
	top := img.Chain[len(img.Chain)-1]
	var users []string
	for _, r := range recs {
		if len(r.RootFS.Lowers) > 0 && strings.Contains(r.RootFS.Lowers[0], top) {
			users = append(users, r.Name)
		}
	}
	return users, nil
}

// DefaultCommand is what `run` without a command runs: the image's
// Entrypoint followed by its Cmd. A command given explicitly replaces both
// (unlike docker, whose arguments replace only Cmd): agents name the whole
// command they want run.
func (m *Manager) DefaultCommand(ctx context.Context, ref string) ([]string, error) {
	if ref == "" || ref == sandbox.DefaultImage {
		return nil, fmt.Errorf("no command given (the host image has no default command): %w", errdefs.ErrInvalidArgument)
	}
	rootfs, err := m.opts.Images.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	args := append(append([]string(nil), rootfs.Config.Entrypoint...), rootfs.Config.Cmd...)
	if len(args) == 0 {
		return nil, fmt.Errorf("no command given, and image %s defines no Entrypoint or Cmd: %w", ref, errdefs.ErrInvalidArgument)
	}
	return args, nil
}

// AutoImage resolves the image "auto" from the command alone (the CLI,
// which knows the project directory, resolves it before; see
// internal/detect): the detected image, or the host image if nothing says.
// Any other reference is returned as is.
func AutoImage(ref string, argv []string) string {
	if ref != "auto" {
		return ref
	}
	if r, ok := detect.Command(argv); ok {
		return r.Image
	}
	return sandbox.DefaultImage
}
