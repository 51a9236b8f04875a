package cli

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/setup"
)

// spawnMaintainer starts `agentkernel pool maintain --remove NAME` detached
// (own session, no stdio), so removing a finished run's sandbox and
// refilling the pool happen after this process has exited.
func (a *app) spawnMaintainer(remove string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	// syscall.StartProcess, not os/exec: the first os.StartProcess in a
	// process probes pidfd support with an extra fork, a cost every
	// pooled run would pay. Nobody waits for this child; when the CLI
	// exits it is reparented and reaped.
	fd := null.Fd()
	_, _, err = syscall.StartProcess(self, []string{self, "--root", a.root, "pool", "maintain", "--remove", remove}, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{fd, fd, fd},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	return err
}

func (a *app) newPoolCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pool",
		Short: "Manage the warm pool of started sandboxes that run claims",
		Args:  exactArgs(0, "a subcommand"),
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "drain",
		Short: "Remove every unclaimed pool sandbox",
		Args:  exactArgs(0, "no arguments"),
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			removed, err := mgr.DrainPool(cmd.Context())
			for _, n := range removed {
				fmt.Fprintln(a.stdout, n)
			}
			return err
		}),
	}, a.newPoolMaintainCmd())
	return cmd
}

func (a *app) newPoolMaintainCmd() *cobra.Command {
	var remove string
	cmd := &cobra.Command{
		Use:    "maintain",
		Short:  "Remove a finished run's sandbox and refill the pool (started by run)",
		Hidden: true,
		Args:   exactArgs(0, "no arguments"),
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			if remove != "" {
				if err := mgr.Remove(cmd.Context(), remove); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
					return err
				}
			}
			if err := mgr.MaintainPool(cmd.Context()); err != nil {
				return err
			}
			_, idle, _ := setup.PoolSettings(a.getenv)
			return mgr.LingerPool(cmd.Context(), min(idle, setup.MaintainerLinger))
		}),
	}
	cmd.Flags().StringVar(&remove, "remove", "", "a finished sandbox to remove first")
	return cmd
}
