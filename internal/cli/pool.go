package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// Defaults of the warm pool `run` uses (see internal/service/pool.go).
const (
	defaultPoolSize = 1
	defaultPoolIdle = 5 * time.Minute
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

// spawnMaintainer starts `agentkernel pool maintain` detached (own
// session, no stdio): it refills the pool beside the run, then removes the
// run's sandbox once this process has exited (done is not needed: this
// process exits right after the run).
func (a *app) spawnMaintainer(remove string, _ <-chan struct{}) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	cmd := exec.Command(self, "--root", a.root, "pool", "maintain", "--remove", remove, "--after-pid", strconv.Itoa(os.Getpid()))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
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
	var afterPID int
	cmd := &cobra.Command{
		Use:    "maintain",
		Short:  "Refill the pool, then remove a run's sandbox once its run is over (started by run)",
		Hidden: true,
		Args:   exactArgs(0, "no arguments"),
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			mgr, err := a.manager(ctx)
			if err != nil {
				return err
			}
			err = mgr.MaintainPool(ctx)
			if remove != "" {
				if afterPID > 0 {
					waitExit(ctx, afterPID)
				}
				if rerr := mgr.Remove(ctx, remove); rerr != nil && !errors.Is(rerr, errdefs.ErrNotFound) {
					err = errors.Join(err, rerr)
				}
			}
			return err
		}),
	}
	cmd.Flags().StringVar(&remove, "remove", "", "a run's sandbox to remove once the run is over")
	cmd.Flags().IntVar(&afterPID, "after-pid", 0, "the process whose exit ends the run")
	return cmd
}

// waitExit returns once process pid has exited (or ctx ends).
func waitExit(ctx context.Context, pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // already gone
	}
	defer unix.Close(fd)
	for ctx.Err() == nil {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, 1000); n > 0 || err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
	}
}
