//go:build linux

package microvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/agentkernel-go/agentkernel/internal/procfs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/vmm/qemu"
)

// Alive reports whether the sandbox's QEMU still runs (the pid has the
// start time recorded, so a reused pid is not taken for it).
func (b *Backend) Alive(ctx context.Context, spec *sandbox.Spec, rt *sandbox.Runtime) bool {
	if rt == nil || rt.PID <= 0 {
		return false
	}
	return procfs.Alive(rt.PID, rt.StartTime)
}

// Stop kills the VM (the manager has asked its agent for a graceful stop
// first) and removes its runtime files; the sandbox's disk stays. It
// finds the VM by its directory, so it also works without a runtime
// record and from any process.
func (b *Backend) Stop(ctx context.Context, spec *sandbox.Spec, rt *sandbox.Runtime) error {
	dir := vmDir(spec)
	if qemu.Alive(dir) {
		vm, err := qemu.Open(ctx, dir)
		if err == nil {
			err = vm.Kill()
			vm.Close()
		}
		if err != nil && !errors.Is(err, qemu.ErrNotRunning) {
			return fmt.Errorf("stopping the VM of sandbox %q: %w", spec.Name, err)
		}
	}
	if err := qemu.Remove(dir); err != nil {
		return fmt.Errorf("stopping the VM of sandbox %q: %w", spec.Name, err)
	}
	return nil
}

// Remove deletes the sandbox's disk. Layer disks stay cached for other
// sandboxes.
func (b *Backend) Remove(ctx context.Context, spec *sandbox.Spec) error {
	if err := qemu.Remove(vmDir(spec)); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(spec.Dir, diskName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the disk of sandbox %q: %w", spec.Name, err)
	}
	return nil
}
