package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/vmm/vmproc"
)

// ErrNotRunning is returned for a VM directory whose QEMU is gone.
var ErrNotRunning = vmproc.ErrNotRunning

// proc is how QEMU runs: its files in a VM directory, and its command
// line, which names the directory's control socket.
var proc = &vmproc.VMM{
	Name:         "QEMU",
	PidFile:      pidFile,
	LogFile:      logFile,
	RuntimeFiles: []string{qmpSocket, ctlSocket, "agent-*.sock", "agent-*.lock"},
	Ours: func(dir string, args []string) bool {
		want := "unix:" + filepath.Join(dir, qmpSocket) + ","
		for _, arg := range args {
			if strings.HasPrefix(arg, want) {
				return true
			}
		}
		return false
	},
}

// VM is a running QEMU, started by Start or found again by Open (from any
// process: the VM outlives the one that started it).
type VM struct {
	dir  string
	proc *vmproc.Process
}

// startTimeout bounds how long QEMU may take to open its control socket.
const startTimeout = 10 * time.Second

// Start starts the VM cfg describes. QEMU runs in a session of its own,
// so it survives the caller; its output goes to the log in cfg.Dir. On
// error nothing is left running and cfg.Dir holds no runtime files.
func Start(ctx context.Context, cfg Config) (*VM, error) {
	args, err := cfg.Args()
	if err != nil {
		return nil, err
	}
	bin, err := Find(cfg.Binary)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	if cfg.NIC != nil {
		cmd.ExtraFiles = []*os.File{cfg.NIC.File} // nicFD
	}
	p, err := proc.Start(cfg.Dir, cmd)
	if err != nil {
		return nil, err
	}
	vm := &VM{dir: cfg.Dir, proc: p}
	err = vm.connect(ctx)
	if err == nil && cfg.Incoming != "" {
		err = vm.waitIncoming(ctx)
	}
	if err != nil {
		err = fmt.Errorf("QEMU: %w%s", err, proc.LogTail(cfg.Dir))
		p.Abort()
		return nil, err
	}
	return vm, nil
}

// Find returns binary's path, or where qemu-system-x86_64 is on PATH
// when binary is empty.
func Find(binary string) (string, error) {
	if binary == "" {
		binary = "qemu-system-x86_64"
	}
	p, err := exec.LookPath(binary)
	if err != nil {
		return "", fmt.Errorf("QEMU: %s not found (apt-get install qemu-system-x86): %w", binary, errdefs.ErrUnavailable)
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
	vm := &VM{dir: dir, proc: p}
	if err := vm.connect(ctx); err != nil {
		vm.Close()
		return nil, err
	}
	return vm, nil
}

// Alive tells whether dir's VM is running.
func Alive(dir string) bool { return proc.Alive(dir) }

// Remove deletes dir, which must not hold a running VM.
func Remove(dir string) error { return proc.Remove(dir) }

// Pid is QEMU's process id.
func (vm *VM) Pid() int { return vm.proc.Pid() }

// Exited is closed when QEMU has exited, for any reason.
func (vm *VM) Exited() <-chan struct{} { return vm.proc.Exited() }

// Status is QEMU's run state: "running", "paused", "prelaunch",
// "shutdown", and the others of QMP's RunState.
func (vm *VM) Status(ctx context.Context) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	if err := vm.run(ctx, "query-status", nil, &st); err != nil {
		return "", err
	}
	return st.Status, nil
}

// Quit asks QEMU to exit and waits for it; past ctx's end, or if QEMU
// does not answer, it is killed.
func (vm *VM) Quit(ctx context.Context) error {
	err := vm.run(ctx, "quit", nil, nil)
	select {
	case <-vm.Exited():
		return nil
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
	}
	if kerr := vm.Kill(); kerr != nil {
		return errors.Join(err, kerr)
	}
	return nil
}

// Kill ends QEMU at once and waits for it.
func (vm *VM) Kill() error { return vm.proc.Kill() }

// Close lets go of the VM without stopping it.
func (vm *VM) Close() error { return vm.proc.Close() }

// connect waits until QEMU answers on its control socket.
func (vm *VM) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	sock := filepath.Join(vm.dir, qmpSocket)
	for {
		if mon, err := dialMonitor(ctx, sock); err == nil {
			return mon.close()
		}
		select {
		case <-vm.Exited():
			return fmt.Errorf("exited before its control socket opened")
		case <-ctx.Done():
			return fmt.Errorf("control socket: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// run executes a QMP command and decodes its return value into ret.
//
// Each command has a connection of its own: QEMU serves one QMP client
// at a time, and the CLI, the server and a maintainer may each hold a
// handle on the same VM.
func (vm *VM) run(ctx context.Context, command string, args, ret any) error {
	mon, err := dialMonitor(ctx, filepath.Join(vm.dir, qmpSocket))
	if err != nil {
		return fmt.Errorf("QMP %s: %w", command, err)
	}
	defer mon.close()
	return mon.execute(ctx, command, args, ret)
}
