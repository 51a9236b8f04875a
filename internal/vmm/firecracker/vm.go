package firecracker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// ErrNotRunning is returned for a VM directory whose Firecracker is gone.
var ErrNotRunning = fmt.Errorf("VM is not running: %w", errdefs.ErrFailedPrecondition)

// VM is a running Firecracker, started by Start or Restore or found again
// by Open (from any process: the VM outlives the one that started it).
type VM struct {
	dir    string
	pid    int
	pidfd  *os.File // non-blocking: the poller tells when Firecracker exits
	api    *client
	exited chan struct{}
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
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("VM directory: %w", err)
	}
	if Alive(dir) {
		return nil, fmt.Errorf("VM in %s: already running: %w", dir, errdefs.ErrAlreadyExists)
	}
	// A killed Firecracker leaves its sockets, and it would not bind
	// over them.
	removeRuntimeFiles(dir)
	log, err := os.OpenFile(Log(dir), os.O_CREATE|os.O_TRUNC|os.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("VM log: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(bin, "--api-sock", APISocket(dir))
	cmd.Stdout, cmd.Stderr = log, log
	// Its own working directory, so that it pins none of the caller's
	// (every path it is given is absolute).
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		removeRuntimeFiles(dir)
		return nil, fmt.Errorf("starting firecracker: %w", err)
	}
	vm := &VM{dir: dir, pid: cmd.Process.Pid, api: newClient(APISocket(dir)), exited: make(chan struct{})}
	// Opened before Wait can reap the child, so the pid is still its own.
	pidfd, perr := openPidfd(vm.pid)
	go func() {
		cmd.Wait()
		close(vm.exited)
	}()
	if perr != nil {
		return nil, vm.abort(fmt.Errorf("firecracker pidfd: %w", perr))
	}
	vm.pidfd = pidfd
	if err := os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(vm.pid)+"\n"), 0o600); err != nil {
		return nil, vm.abort(fmt.Errorf("VM pid file: %w", err))
	}
	if err := vm.waitAPI(ctx); err != nil {
		return nil, vm.abort(fmt.Errorf("firecracker: %w", err))
	}
	return vm, nil
}

// abort ends a VM that Start or Restore could not bring up and returns
// err, with Firecracker's last word if it died meanwhile.
func (vm *VM) abort(err error) error {
	if vm.gone() {
		err = fmt.Errorf("%w%s", err, logTail(vm.dir))
	}
	vm.kill()
	vm.Close()
	removeRuntimeFiles(vm.dir)
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
	pid, err := readPid(dir)
	if err != nil {
		return nil, err
	}
	pidfd, err := openPidfd(pid)
	if err != nil {
		return nil, ErrNotRunning
	}
	// A pid is only the VM's if the process's command line names this
	// directory's API socket: pids are reused. Checked after the pidfd
	// is open, so the pidfd is the VM's too.
	if !isOurs(pid, dir) {
		pidfd.Close()
		return nil, ErrNotRunning
	}
	vm := &VM{dir: dir, pid: pid, pidfd: pidfd, api: newClient(APISocket(dir)), exited: make(chan struct{})}
	go vm.watch()
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
func Alive(dir string) bool {
	pid, err := readPid(dir)
	return err == nil && isOurs(pid, dir)
}

// Remove deletes dir, which must not hold a running VM.
func Remove(dir string) error {
	if Alive(dir) {
		return fmt.Errorf("VM in %s is running: %w", dir, errdefs.ErrFailedPrecondition)
	}
	return os.RemoveAll(dir)
}

// Pid is Firecracker's process id.
func (vm *VM) Pid() int { return vm.pid }

// Exited is closed when Firecracker has exited, for any reason (the
// guest rebooting or panicking is one).
func (vm *VM) Exited() <-chan struct{} { return vm.exited }

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
func (vm *VM) Kill() error { return vm.kill() }

func (vm *VM) kill() error {
	var err error
	if vm.pidfd != nil {
		rc, rerr := vm.pidfd.SyscallConn()
		if rerr == nil {
			rerr = rc.Control(func(fd uintptr) { err = unix.PidfdSendSignal(int(fd), unix.SIGKILL, nil, 0) })
		}
		err = errors.Join(rerr, err)
	} else if !vm.gone() {
		err = unix.Kill(vm.pid, unix.SIGKILL) // launch, without a pidfd: our child, not yet reaped
	}
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("killing firecracker: %w", err)
	}
	select {
	case <-vm.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("firecracker %d did not exit after SIGKILL: %w", vm.pid, errdefs.ErrInternal)
	}
}

// Close lets go of the VM without stopping it.
func (vm *VM) Close() error {
	if vm.pidfd != nil {
		vm.pidfd.Close()
		vm.pidfd = nil
	}
	return nil
}

// call is one API request; on a Firecracker that is gone it says so.
func (vm *VM) call(ctx context.Context, method, path string, in, out any) error {
	err := vm.api.do(ctx, method, path, in, out)
	if err == nil || errors.As(err, new(*APIError)) || ctx.Err() != nil {
		return err
	}
	// The connection failed: if Firecracker died, its exit is noticed
	// (by Wait or the pidfd) a moment after the socket closes.
	select {
	case <-vm.exited:
		return fmt.Errorf("firecracker: %s %s: %w", method, path, ErrNotRunning)
	case <-time.After(100 * time.Millisecond):
		return err
	}
}

func (vm *VM) gone() bool {
	select {
	case <-vm.exited:
		return true
	default:
		return false
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
		case <-vm.exited:
			return fmt.Errorf("exited before its API socket opened")
		case <-ctx.Done():
			return fmt.Errorf("API socket: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// watch closes exited when a VM found by Open exits: its pidfd becomes
// readable then. Close ends the wait without closing exited.
func (vm *VM) watch() {
	rc, err := vm.pidfd.SyscallConn()
	if err != nil {
		return
	}
	waited := false
	err = rc.Read(func(uintptr) bool {
		done := waited
		waited = true
		return done
	})
	if err == nil {
		close(vm.exited)
	}
}

// openPidfd opens a non-blocking pidfd, which the poller can wait on.
func openPidfd(pid int) (*os.File, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "pidfd"), nil
}

func readPid(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, ErrNotRunning
		}
		return 0, fmt.Errorf("VM pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("VM pid file %q: %w", b, errdefs.ErrInternal)
	}
	return pid, nil
}

// isOurs tells whether process pid is the Firecracker serving dir's API
// socket, as launch started it.
func isOurs(pid int, dir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimSuffix(cmdline, []byte{0}), []byte{0})
	for i := 1; i+1 < len(args); i++ {
		if string(args[i]) == "--api-sock" && string(args[i+1]) == APISocket(dir) {
			return true
		}
	}
	return false
}

func removeRuntimeFiles(dir string) {
	for _, f := range []string{APISocket(dir), VsockSocket(dir), filepath.Join(dir, pidFile)} {
		os.Remove(f)
	}
}

// logTail is the end of Firecracker's log, for an error message:
// Firecracker says there why it would not start or why it died.
func logTail(dir string) string {
	b, _ := os.ReadFile(Log(dir))
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	return ": " + strings.TrimSpace(lines[len(lines)-1])
}
