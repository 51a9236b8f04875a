package cli

import (
	"context"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
	"github.com/agentkernel-go/agentkernel/internal/setup"
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
	mgr, agentErr, err := setup.Manager(ctx, setup.Config{
		Root: a.root, Getenv: a.getenv, Logger: a.logger, Images: a.imageOpts,
		Background: a.spawnMaintainer,
	})
	if err != nil {
		return nil, err
	}
	a.mgr, a.agentErr = mgr, agentErr
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
