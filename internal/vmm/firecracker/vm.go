package firecracker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/vmm/vmproc"
)

// ErrNotRunning is returned for a VM directory whose Firecracker is gone.
var ErrNotRunning = vmproc.ErrNotRunning

// proc is how Firecracker runs: its files in a VM directory, and its
// command line, which names the directory's API socket.
var proc = &vmproc.VMM{
	Name:         "firecracker",
	PidFile:      pidFile,
	LogFile:      logFile,
	RuntimeFiles: []string{apiSocket, vsockSocket},
	Ours: func(dir string, args []string) bool {
		for i := 1; i+1 < len(args); i++ {
			if args[i] == "--api-sock" && args[i+1] == APISocket(dir) {
				return true
			}
		}
		return false
	},
}

// VM is a running Firecracker, started by Start or Restore or found again
// by Open (from any process: the VM outlives the one that started it).
type VM struct {
	dir  string
	proc *vmproc.Process
	api  *client
}

// startTimeout bounds how long Firecracker may take from its start to a
// running guest: opening its API socket, then every configuration
// request, or loading a snapshot.
const startTimeout = 10 * time.Second

// Start starts the VM cfg describes: Firecracker with nothing but its API
// socket, then one request per part of the machine (machine-config,
// boot-source, each drive, the network interface, vsock) and
// InstanceStart. Firecracker runs in a session of its own, so it survives
// the caller; its output goes to Log(cfg.Dir). On error nothing is left
// running and cfg.Dir holds no runtime files, only the log.
func Start(ctx context.Context, cfg Config) (*VM, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	vm, err := launch(ctx, cfg.Binary, cfg.Dir)
	if err != nil {
		return nil, err
	}
	if err := vm.configure(ctx, &cfg); err != nil {
		return nil, vm.abort(err)
	}
	return vm, nil
}

// configure describes the machine to a fresh Firecracker and boots it.
// The order is the spec's: every pre-boot resource, then InstanceStart.
func (vm *VM) configure(ctx context.Context, cfg *Config) error {
	put := func(path string, body any) error { return vm.call(ctx, http.MethodPut, path, body, nil) }
	if err := put("/machine-config", machineConfig{VCPUCount: cfg.VCPUs, MemSizeMiB: cfg.MemoryMiB}); err != nil {
		return err
	}
	boot := bootSource{KernelImagePath: cfg.Kernel, InitrdPath: cfg.Initrd, BootArgs: cfg.kernelCmdline()}
	if err := put("/boot-source", boot); err != nil {
		return err
	}
	for i, d := range cfg.Disks {
		id := cfg.driveID(i)
		if err := put("/drives/"+id, drive{DriveID: id, PathOnHost: d.Path, IsReadOnly: d.ReadOnly}); err != nil {
			return err
		}
	}
	if n := cfg.NIC; n != nil {
		const id = "net0"
		if err := put("/network-interfaces/"+id, networkInterface{IfaceID: id, HostDevName: n.TapName, GuestMAC: n.MAC}); err != nil {
			return err
		}
	}
	if cfg.VsockCID != 0 {
		if err := put("/vsock", vsock{GuestCID: cfg.VsockCID, UDSPath: VsockSocket(cfg.Dir)}); err != nil {
			return err
		}
	}
	return put("/actions", instanceAction{ActionType: "InstanceStart"})
}

// Restore starts a Firecracker in cfg.Dir and resumes in it the VM saved
// by Snapshot at snapshotPath and memPath (guest memory, mapped from the
// file: it must stay in place while the VM runs). Only cfg.Binary and
// cfg.Dir are used: the snapshot holds the machine, its disks (at their
// paths when it was taken) and its vsock device, whose socket is the path
// recorded in the snapshot — VsockSocket of the directory the VM ran in
// then, which must be free again — not VsockSocket(cfg.Dir).
// (Firecracker 1.16 can move it with the load request's vsock_override;
// it is not sent, since earlier releases refuse the request with it.)
func Restore(ctx context.Context, cfg Config, snapshotPath, memPath string) (*VM, error) {
	if err := validateDir(cfg.Dir); err != nil {
		return nil, err
	}
	for _, f := range []struct{ what, path string }{{"snapshot", snapshotPath}, {"memory file", memPath}} {
		if !filepath.IsAbs(f.path) {
			return nil, bad("%s %q must be an absolute path", f.what, f.path)
		}
		if _, err := os.Stat(f.path); err != nil {
			return nil, bad("%s: %v", f.what, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	vm, err := launch(ctx, cfg.Binary, cfg.Dir)
	if err != nil {
		return nil, err
	}
	// Only a fresh Firecracker takes a snapshot: loading it is the one
	// request before the guest runs again.
	load := snapshotLoad{
		SnapshotPath: snapshotPath,
		MemBackend:   memoryBackend{BackendType: "File", BackendPath: memPath},
		ResumeVM:     true,
	}
	if err := vm.call(ctx, http.MethodPut, "/snapshot/load", load, nil); err != nil {
		return nil, vm.abort(err)
	}
	return vm, nil
}

// launch starts Firecracker for the VM in dir and waits for its API.
func launch(ctx context.Context, binary, dir string) (*VM, error) {
	bin, err := Find(binary)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--api-sock", APISocket(dir))
	// Its own working directory, so that it pins none of the caller's
	// (every path it is given is absolute).
	cmd.Dir = dir
	p, err := proc.Start(dir, cmd)
	if err != nil {
		return nil, err
	}
	vm := &VM{dir: dir, proc: p, api: newClient(APISocket(dir))}
	if err := vm.waitAPI(ctx); err != nil {
		return nil, vm.abort(fmt.Errorf("firecracker: %w", err))
	}
	return vm, nil
}

// abort ends a VM that Start or Restore could not bring up and returns
// err, with Firecracker's last word if it died meanwhile.
func (vm *VM) abort(err error) error {
	if vm.proc.Gone() {
		err = fmt.Errorf("%w%s", err, proc.LogTail(vm.dir))
	}
	vm.proc.Abort()
	return err
}

// Find returns binary's path, or where firecracker is on PATH when
// binary is empty.
func Find(binary string) (string, error) {
	if binary == "" {
		binary = "firecracker"
	}
	p, err := exec.LookPath(binary)
	if err != nil {
		return "", fmt.Errorf("firecracker: %s not found (install a release from github.com/firecracker-microvm/firecracker/releases): %w", binary, errdefs.ErrUnavailable)
	}
	return p, nil
}

// Open finds the VM running in dir again. A VM that is gone gives
// ErrNotRunning (Remove then cleans its directory).
func Open(ctx context.Context, dir string) (*VM, error) {
	p, err := proc.Open(dir)
	if err != nil {
		return nil, err
	}
	vm := &VM{dir: dir, proc: p, api: newClient(APISocket(dir))}
	// The VM may be starting in another process: its API is up soon.
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := vm.waitAPI(ctx); err != nil {
		vm.Close()
		return nil, fmt.Errorf("firecracker: %w", err)
	}
	return vm, nil
}

// Alive tells whether dir's VM is running.
func Alive(dir string) bool { return proc.Alive(dir) }

// Remove deletes dir, which must not hold a running VM.
func Remove(dir string) error { return proc.Remove(dir) }

// Pid is Firecracker's process id.
func (vm *VM) Pid() int { return vm.proc.Pid() }

// Exited is closed when Firecracker has exited, for any reason (the
// guest rebooting or panicking is one).
func (vm *VM) Exited() <-chan struct{} { return vm.proc.Exited() }

// Info is what Firecracker says of the VM, its state among it.
func (vm *VM) Info(ctx context.Context) (InstanceInfo, error) {
	var info InstanceInfo
	err := vm.call(ctx, http.MethodGet, "/", nil, &info)
	return info, err
}

// Pause stops the guest's vCPUs.
func (vm *VM) Pause(ctx context.Context) error {
	return vm.call(ctx, http.MethodPatch, "/vm", vmState{State: StatePaused}, nil)
}

// Resume runs a paused guest again.
func (vm *VM) Resume(ctx context.Context) error {
	return vm.call(ctx, http.MethodPatch, "/vm", vmState{State: "Resumed"}, nil)
}

// Snapshot saves the VM, its state to snapshotPath and its memory to
// memPath (a full copy), for Restore. Firecracker snapshots only a paused
// VM: a running one is paused first and left paused, for the caller to
// resume or kill; if the snapshot fails it is resumed.
func (vm *VM) Snapshot(ctx context.Context, snapshotPath, memPath string) error {
	for _, p := range []string{snapshotPath, memPath} {
		if !filepath.IsAbs(p) {
			return bad("snapshot file %q must be an absolute path", p)
		}
	}
	info, err := vm.Info(ctx)
	if err != nil {
		return err
	}
	resume := false // whether this call paused it
	if info.State == StateRunning {
		if err := vm.Pause(ctx); err != nil {
			return err
		}
		resume = true
	}
	err = vm.call(ctx, http.MethodPut, "/snapshot/create",
		snapshotCreate{SnapshotType: "Full", SnapshotPath: snapshotPath, MemFilePath: memPath}, nil)
	if err != nil && resume {
		// Leave the VM as it was found, even past ctx's end.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := vm.Resume(rctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// Kill ends Firecracker at once and waits for it.
func (vm *VM) Kill() error { return vm.proc.Kill() }

// Close lets go of the VM without stopping it.
func (vm *VM) Close() error { return vm.proc.Close() }

// call is one API request; on a Firecracker that is gone it says so.
func (vm *VM) call(ctx context.Context, method, path string, in, out any) error {
	err := vm.api.do(ctx, method, path, in, out)
	if err == nil || errors.As(err, new(*APIError)) || ctx.Err() != nil {
		return err
	}
	// The connection failed: if Firecracker died, its exit is noticed
	// (by Wait or the pidfd) a moment after the socket closes.
	select {
	case <-vm.Exited():
		return fmt.Errorf("firecracker: %s %s: %w", method, path, ErrNotRunning)
	case <-time.After(100 * time.Millisecond):
		return err
	}
}

// waitAPI waits until Firecracker answers on its API socket.
func (vm *VM) waitAPI(ctx context.Context) error {
	for {
		try, cancel := context.WithTimeout(ctx, time.Second)
		var info InstanceInfo
		err := vm.api.do(try, http.MethodGet, "/", nil, &info)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-vm.Exited():
			return fmt.Errorf("exited before its API socket opened")
		case <-ctx.Done():
			return fmt.Errorf("API socket: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
