package qemu

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// A VM's state — memory and devices — is saved with QEMU's migration to a
// file and brought back by starting QEMU with -incoming from that file
// (Config.Incoming). QEMU 7.2 has no file: migration URI yet, so the
// stream goes through cat; the path is quoted for the shell, and a path
// that cannot be is refused. The restored VM must be configured as the
// saved one (devices, memory, kernel), and its disks must hold what they
// held at the save: the caller copies the writable one with the state.

// Save pauses the VM and writes its state to path; the VM stays paused
// (Resume continues it, Quit ends it).
func (vm *VM) Save(ctx context.Context, path string) error {
	if err := checkStatePath(path); err != nil {
		return err
	}
	if err := vm.run(ctx, "stop", nil, nil); err != nil {
		return err
	}
	if err := vm.run(ctx, "migrate", map[string]any{"uri": "exec:cat > " + shellQuote(path)}, nil); err != nil {
		return err
	}
	for {
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := vm.run(ctx, "query-migrate", nil, &st); err != nil {
			return err
		}
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("saving the VM's state to %s: %s %s", path, st.Status, st.ErrorDesc)
		}
		select {
		case <-ctx.Done():
			vm.run(context.WithoutCancel(ctx), "migrate_cancel", nil, nil)
			return fmt.Errorf("saving the VM's state: %w", ctx.Err())
		case <-vm.Exited():
			return fmt.Errorf("saving the VM's state: %w", ErrNotRunning)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Resume runs a paused VM.
func (vm *VM) Resume(ctx context.Context) error { return vm.run(ctx, "cont", nil, nil) }

// waitIncoming waits until a VM started with Config.Incoming has loaded
// its state, and runs it. QEMU exits if the state does not fit the VM.
func (vm *VM) waitIncoming(ctx context.Context) error {
	for {
		st, err := vm.Status(ctx)
		if err != nil {
			return err
		}
		if st != "inmigrate" {
			return vm.Resume(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("restoring the VM's state: %w", ctx.Err())
		case <-vm.Exited():
			return ErrNotRunning
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func checkStatePath(path string) error {
	if !filepath.IsAbs(path) || strings.ContainsAny(path, "'\n\x00") {
		return fmt.Errorf("VM state file %q: must be an absolute path without quotes: %w", path, errdefs.ErrInvalidArgument)
	}
	return nil
}

// shellQuote quotes a path checkStatePath accepted.
func shellQuote(path string) string { return "'" + path + "'" }
