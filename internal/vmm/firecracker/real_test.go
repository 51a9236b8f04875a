//go:build linux

package firecracker

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRealFirecracker checks the driver against the real thing, the fake's
// model, wherever Firecracker can run: it boots a guest and drives it.
//
// It skips with the reason instead of going through testutil.Require,
// which fails in CI: hardware KVM is what CI machines cannot give
// (DESIGN.md, "Tests are real").
func TestRealFirecracker(t *testing.T) {
	if ok, why := Probe(""); !ok {
		t.Skipf("skipping: %s", why)
	}
	kernel := os.Getenv("AGENTKERNEL_TEST_KERNEL")
	if kernel == "" {
		t.Skip("skipping: set AGENTKERNEL_TEST_KERNEL to a guest kernel Firecracker boots (vmlinux)")
	}
	ctx := t.Context()
	cfg := Config{
		Dir:       filepath.Join(t.TempDir(), "vm"),
		Kernel:    kernel,
		Initrd:    os.Getenv("AGENTKERNEL_TEST_INITRD"),
		VCPUs:     1,
		MemoryMiB: 128,
		VsockCID:  3,
		Console:   true,
	}
	vm, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		vm.Kill()
		vm.Close()
		if err := Remove(cfg.Dir); err != nil {
			t.Error(err)
		}
	}()
	// Started means Running at once; without a root filesystem the guest
	// panics later on, and Firecracker exits: only the start is checked.
	info, err := vm.Info(ctx)
	if err != nil || info.State != StateRunning {
		b, _ := os.ReadFile(Log(cfg.Dir))
		t.Fatalf("state %+v, %v; want Running. Log:\n%s", info, err, b)
	}
	t.Logf("%s %s running", info.AppName, info.VMMVersion)
	if _, err := os.Stat(VsockSocket(cfg.Dir)); err != nil {
		t.Errorf("vsock socket: %v", err)
	}
	if err := vm.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if info, err := vm.Info(ctx); err != nil || info.State != StatePaused {
		t.Errorf("after Pause: %+v, %v", info, err)
	}
	snaps := t.TempDir()
	if err := vm.Snapshot(ctx, filepath.Join(snaps, "vm.snap"), filepath.Join(snaps, "vm.mem")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-vm.Exited():
		t.Fatal("Firecracker exited while paused")
	case <-time.After(100 * time.Millisecond):
	}
}
