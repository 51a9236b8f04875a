package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

func (a *app) newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage OCI images: pull, import, list, inspect, remove, prune",
		Long: `Images come from any OCI or Docker v2 registry (credentials from the docker
config, its credential helpers, or AGENTKERNEL_REGISTRY_USERNAME/PASSWORD/TOKEN)
or from files: docker save archives and OCI layouts. Each layer is unpacked
once and shared by every image and sandbox that has it. "host" is not an
image in the store: it is a read-only view of this machine's userland.`,
		Args: exactArgs(0, "a subcommand"),
	}
	cmd.AddCommand(a.newImagePullCmd(), a.newImageImportCmd(), a.newImageListCmd(),
		a.newImageInspectCmd(), a.newImageRmCmd(), a.newImagePruneCmd())
	return cmd
}

// registryFlags are the pull settings a command may override.
func (a *app) registryFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&a.imageOpts.Platform, "platform", "", "platform to pick from multi-arch images, os/arch[/variant] (default: this host's)")
	fs.StringSliceVar(&a.imageOpts.Insecure, "insecure-registry", nil, "registry host[:port] that may use plain HTTP or unverified TLS (repeatable)")
}

func (a *app) newImagePullCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull IMAGE",
		Short: "Download an image from its registry",
		Example: `  agentkernel image pull python:3.12-alpine
  agentkernel image pull --platform linux/arm64 alpine@sha256:...
  agentkernel image pull --insecure-registry localhost:5000 localhost:5000/tools:1`,
		Args: exactArgs(1, "an image reference"),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			var bars *pullBars
			if !quiet {
				bars = newPullBars(a.stderr)
			}
			img, err := mgr.PullImage(cmd.Context(), args[0], bars.progress())
			bars.wait()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s %s\n", displayName(img.Name), img.ID)
			return nil
		}),
	}
	a.registryFlags(cmd)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bars")
	return cmd
}

func (a *app) newImageImportCmd() *cobra.Command {
	var tag string
	cmd := &cobra.Command{
		Use:   "import PATH",
		Short: "Import a docker save archive or an OCI layout (directory or tar)",
		Example: `  docker save alpine:3.20 -o alpine.tar && agentkernel image import alpine.tar
  agentkernel image import --tag tools:1 ./oci-layout/`,
		Args: exactArgs(1, "a file or directory"),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			imgs, err := mgr.ImportImages(cmd.Context(), args[0], tag)
			if err != nil {
				return err
			}
			for _, img := range imgs {
				fmt.Fprintf(a.stdout, "%s %s\n", displayName(img.Name), img.ID)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&tag, "tag", "", "name the imported image (the archive must hold exactly one)")
	a.registryFlags(cmd)
	return cmd
}

func (a *app) newImageListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List stored images",
		Args:    exactArgs(0, "no arguments"),
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			imgs, err := mgr.Images(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if imgs == nil {
					imgs = []*image.Image{}
				}
				return writeJSON(a.stdout, imgs)
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "IMAGE\tID\tPLATFORM\tSIZE\tCREATED")
			now := time.Now()
			for _, img := range imgs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", displayName(img.Name), img.ShortID(), img.Platform,
					humanBytes(img.Size), ago(now, img.Created))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) newImageInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Show a stored image and its OCI config as JSON",
		Args:  exactArgs(1, "an image reference or ID"),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			img, raw, err := mgr.InspectImage(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return writeJSON(a.stdout, struct {
				*image.Image
				OCIConfig json.RawMessage `json:"oci_config"`
			}{img, raw})
		}),
	}
}

func (a *app) newImageRmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm IMAGE...",
		Aliases: []string{"remove"},
		Short:   "Remove images (their layers go at the next prune)",
		Args:    cobra.MinimumNArgs(1),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			for _, ref := range args {
				removed, err := mgr.RemoveImage(cmd.Context(), ref, force)
				if err != nil {
					return err
				}
				for _, img := range removed {
					fmt.Fprintln(a.stdout, displayName(img.Name))
				}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove even if a sandbox was made from it (its layers stay while it exists)")
	return cmd
}

func (a *app) newImagePruneCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "prune",
		Short: "Delete layers and blobs no image and no sandbox uses",
		Args:  exactArgs(0, "no arguments"),
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			rep, err := mgr.PruneImages(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "removed %d layer(s) and %d blob(s), %s\n", rep.Layers, rep.Blobs, humanBytes(rep.Bytes))
			return nil
		}),
	}
}

// displayName shortens Docker Hub names the way docker shows them.
func displayName(n string) string {
	n = strings.TrimPrefix(n, "index.docker.io/")
	return strings.TrimPrefix(n, "library/")
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ensureImage pulls ref before a sandbox is made from it, if the store
// lacks it, so the bars are finished before the command's output starts.
func (a *app) ensureImage(ctx context.Context, mgr *service.Manager, ref string) error {
	if ref == "" || ref == sandbox.DefaultImage {
		return nil // nothing to pull: no bars to set up on run's path
	}
	bars := newPullBars(a.stderr)
	err := mgr.EnsureImage(ctx, ref, bars.progress())
	bars.wait()
	return err
}
