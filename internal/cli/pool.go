package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// Defaults of the warm pool `run` uses (see internal/service/pool.go).
const (
	defaultPoolSize = 1
	defaultPoolIdle = 5 * time.Minute
	// maintainerLinger is how long a pool maintainer waits for the next
	// run's hand-off before it exits (see internal/service/pool_handoff.go).
	maintainerLinger = time.Minute
)

// poolSettings reads AGENTKERNEL_POOL (sandboxes kept warm per
// configuration; 0 turns the pool off) and AGENTKERNEL_POOL_IDLE (how long
// an unused one lives).
func poolSettings(getenv func(string) string) (size int, idle time.Duration, err error) {
	size, idle = defaultPoolSize, defaultPoolIdle
	if v := getenv("AGENTKERNEL_POOL"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 0 || size > 64 {
			return 0, 0, fmt.Errorf("AGENTKERNEL_POOL=%q: want a number from 0 to 64: %w", v, errdefs.ErrInvalidArgument)
		}
	}
	if v := getenv("AGENTKERNEL_POOL_IDLE"); v != "" {
		if idle, err = time.ParseDuration(v); err != nil || idle <= 0 {
			return 0, 0, fmt.Errorf("AGENTKERNEL_POOL_IDLE=%q: want a positive duration such as 5m: %w", v, errdefs.ErrInvalidArgument)
		}
	}
	return size, idle, nil
}

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
			_, idle, _ := poolSettings(a.getenv)
			return mgr.LingerPool(cmd.Context(), min(idle, maintainerLinger))
		}),
	}
	cmd.Flags().StringVar(&remove, "remove", "", "a finished sandbox to remove first")
	return cmd
}
