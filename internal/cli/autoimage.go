package cli

import (
	"fmt"
	"os"

	"github.com/agentkernel-go/agentkernel/internal/detect"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// autoImage is the --image value that asks for detection.
const autoImage = "auto"

// resolveAutoImage replaces --image auto with the image detection picks
// for argv in the current directory, saying which and why; with nothing
// to go by it is the host image.
func (a *app) resolveAutoImage(cfg *sandbox.Config, argv []string) error {
	if cfg.Image != autoImage {
		return nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("--image auto: %w", err)
	}
	r, ok, err := detect.Image(argv, dir)
	if err != nil {
		return fmt.Errorf("--image auto: %w", err)
	}
	if !ok {
		r = detect.Result{Image: sandbox.DefaultImage, Reason: "nothing to detect from"}
	}
	cfg.Image = r.Image
	fmt.Fprintf(a.stderr, "agentkernel: image %s (%s)\n", r.Image, r.Reason)
	return nil
}
