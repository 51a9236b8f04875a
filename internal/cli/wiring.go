package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/agentkernel-go/agentkernel/internal/backend/native"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// This file is the one place the binary's backends and image store are
// built and handed to the manager.

// manager returns the manager over the data root, building it on first use.
func (a *app) manager(ctx context.Context) (*service.Manager, error) {
	if a.mgr != nil {
		return a.mgr, nil
	}
	if a.logger == nil { // shell completion skips the root's setup
		if err := a.setup(); err != nil {
			return nil, err
		}
	}
	agentPath, err := findAgent(a.getenv)
	if err != nil {
		// Commands that start sandboxes report it (needAgent); the others
		// (list, info, remove, ...) work without the agent binary.
		a.agentErr = err
	}
	defaultBackend := a.getenv("AGENTKERNEL_BACKEND")
	if defaultBackend != "" {
		if _, err := sandbox.ParseType(defaultBackend); err != nil {
			return nil, fmt.Errorf("AGENTKERNEL_BACKEND: %w", err)
		}
	}
	poolSize, poolIdle, err := poolSettings(a.getenv)
	if err != nil {
		return nil, err
	}
	mgr, err := service.New(ctx, service.Options{
		Root:           a.root,
		Registry:       newRegistry(a.root, agentPath, a.logger),
		Images:         a.newImageStore(),
		DefaultBackend: defaultBackend,
		Logger:         a.logger,
		PoolSize:       poolSize,
		PoolIdle:       poolIdle,
		Background:     a.spawnMaintainer,
	})
	if err != nil {
		return nil, err
	}
	a.mgr = mgr
	return mgr, nil
}

// managerFor validates a sandbox name first — bad input must not even
// create the data root — and returns the manager.
func (a *app) managerFor(ctx context.Context, name string) (*service.Manager, error) {
	if err := sandbox.ValidateName(name); err != nil {
		return nil, err
	}
	return a.manager(ctx)
}

// needAgent fails if the agent binary, which every new sandbox runs, was
// not found. Call it after manager.
func (a *app) needAgent() error {
	return a.agentErr
}

// agentName is the agent binary's file name.
const agentName = "agentkernel-agent"

// agentFallbacks are the system-wide install locations of the agent.
var agentFallbacks = []string{
	"/usr/local/lib/agentkernel/" + agentName,
	"/usr/lib/agentkernel/" + agentName,
}

// findAgent locates the agent binary: $AGENTKERNEL_AGENT, else next to the
// running executable, else on $PATH, else the system-wide locations.
func findAgent(getenv func(string) string) (string, error) {
	if p := getenv("AGENTKERNEL_AGENT"); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("agent binary from AGENTKERNEL_AGENT: %v: %w", err, errdefs.ErrUnavailable)
		}
		return filepath.Abs(p)
	}
	var tried []string
	if self, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(self); err == nil {
			self = resolved
		}
		p := filepath.Join(filepath.Dir(self), agentName)
		if checkExecutable(p) == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath(agentName); err == nil {
		return filepath.Abs(p)
	}
	tried = append(tried, "$PATH")
	for _, p := range agentFallbacks {
		if checkExecutable(p) == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("agent binary %s not found (set AGENTKERNEL_AGENT; tried %s): %w",
		agentName, strings.Join(tried, ", "), errdefs.ErrUnavailable)
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s does not exist", p)
		}
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// newRegistry lists the backends built into this binary.
func newRegistry(root, agentPath string, logger *slog.Logger) *sandbox.Registry {
	return sandbox.NewRegistry(
		native.New(native.Options{AgentPath: agentPath, Root: root, Logger: logger}),
	)
}

// newImageStore builds the image store of the data root (images live in
// <root>/images). AGENTKERNEL_PLATFORM and AGENTKERNEL_INSECURE_REGISTRIES
// (comma-separated) apply when no flag set them.
func (a *app) newImageStore() *image.Store {
	opts := a.imageOpts
	opts.Getenv = a.getenv
	if opts.Platform == "" {
		opts.Platform = a.getenv("AGENTKERNEL_PLATFORM")
	}
	if v := a.getenv("AGENTKERNEL_INSECURE_REGISTRIES"); v != "" {
		for _, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r != "" {
				opts.Insecure = append(opts.Insecure, r)
			}
		}
	}
	return image.NewStore(a.root, opts)
}
