//go:build linux

package native

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/cgroups"
	"github.com/agentkernel-go/agentkernel/internal/procfs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// Alive reports whether the sandbox's init (the agent) still runs: the pid
// exists, is not a zombie, and started when the runtime record says (a
// reused pid has another start time).
func (b *Backend) Alive(ctx context.Context, spec *sandbox.Spec, rt *sandbox.Runtime) bool {
	if rt == nil || rt.PID <= 0 {
		return false
	}
	return procfs.Alive(rt.PID, rt.StartTime)
}

// Stop kills the sandbox: SIGKILL to its init ends the whole pid namespace.
// It waits until init is gone, then removes the cgroups and the socket. It
// is idempotent, works from any process, and on sandboxes that already died.
func (b *Backend) Stop(ctx context.Context, spec *sandbox.Spec, rt *sandbox.Runtime) error {
	ex, err := parseExtra(rt)
	if err != nil {
		return err
	}
	var errs []error
	if rt != nil && rt.PID > 0 {
		if err := killInit(ctx, rt.PID, rt.StartTime); err != nil {
			errs = append(errs, err)
		}
	}
	g := &cgroups.Group{Dirs: ex.Cgroups}
	if rt == nil {
		// A start interrupted before its runtime was recorded: whatever it
		// left runs in the sandbox's cgroups, named by its id.
		if layout, err := b.cgroupLayout(); err == nil {
			g = layout.Find("agentkernel/" + spec.ID)
		}
	}
	if err := g.Destroy(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := os.Remove(socketPath(spec)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("stopping native sandbox %q: %w", spec.Name, errors.Join(errs...))
	}
	return nil
}

// killInit SIGKILLs pid if it is still the process that started at start,
// and waits for it to exit. A pidfd pins the process between the check and
// the signal, so a reused pid is never signalled.
func killInit(ctx context.Context, pid int, start uint64) error {
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil // gone
		}
		return fmt.Errorf("opening sandbox init %d: %w", pid, err)
	}
	defer unix.Close(pfd)
	if !procfs.Alive(pid, start) {
		return nil // exited, or the pid now belongs to another process
	}
	if err := unix.PidfdSendSignal(pfd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("killing sandbox init %d: %w", pid, err)
	}
	// The pidfd becomes readable when the process has exited; the pid
	// namespace is torn down (all its processes reaped) by then.
	for {
		ms := 1000
		if dl, ok := ctx.Deadline(); ok {
			ms = max(1, min(ms, int(time.Until(dl)/time.Millisecond)))
		}
		fds := []unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("waiting for sandbox init %d: %w", pid, err)
		}
		if n > 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for sandbox init %d to exit: %w", pid, ctx.Err())
		}
	}
}

// Remove deletes what the backend keeps in spec.Dir (the overlay's upper
// and work directories, the log, the socket) and frees the sandbox's uid
// range. The manager removes spec.Dir itself afterwards. Idempotent.
func (b *Backend) Remove(ctx context.Context, spec *sandbox.Spec) error {
	var errs []error
	if err := removeAll(filepath.Join(spec.Dir, overlayName)); err != nil {
		errs = append(errs, err)
	}
	if st, ok := readState(spec.Dir); ok && os.Geteuid() == 0 {
		s := slots{dir: filepath.Join(b.dataRoot(spec), "native", "uids")}
		if err := s.release(st.Slot, spec.ID); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range []string{stateName, logName, socketName} {
		if err := os.Remove(filepath.Join(spec.Dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("removing native sandbox %q: %w", spec.Name, errors.Join(errs...))
	}
	return nil
}
