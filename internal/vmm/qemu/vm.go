package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// ErrNotRunning is returned for a VM directory whose QEMU is gone.
var ErrNotRunning = fmt.Errorf("VM is not running: %w", errdefs.ErrFailedPrecondition)

// VM is a running QEMU, started by Start or found again by Open (from any
// process: the VM outlives the one that started it).
type VM struct {
	dir    string
	pid    int
	pidfd  *os.File // non-blocking: the poller tells when QEMU exits
	exited chan struct{}
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
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("VM directory: %w", err)
	}
	if Alive(cfg.Dir) {
		return nil, fmt.Errorf("VM in %s: already running: %w", cfg.Dir, errdefs.ErrAlreadyExists)
	}
	removeRuntimeFiles(cfg.Dir)
	log, err := os.OpenFile(filepath.Join(cfg.Dir, logFile), os.O_CREATE|os.O_TRUNC|os.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("VM log: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if cfg.NIC != nil {
		cmd.ExtraFiles = []*os.File{cfg.NIC.File} // nicFD
	}
	if err := cmd.Start(); err != nil {
		removeRuntimeFiles(cfg.Dir)
		return nil, fmt.Errorf("starting QEMU: %w", err)
	}
	vm := &VM{dir: cfg.Dir, pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(vm.exited)
	}()
	fail := func(err error) (*VM, error) {
		vm.kill()
		vm.Close()
		removeRuntimeFiles(cfg.Dir)
		return nil, err
	}
	// The child is not reaped before Wait, so its pid is still its own.
	if vm.pidfd, err = openPidfd(vm.pid); err != nil {
		return fail(fmt.Errorf("QEMU pidfd: %w", err))
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, pidFile), []byte(strconv.Itoa(vm.pid)+"\n"), 0o600); err != nil {
		return fail(fmt.Errorf("VM pid file: %w", err))
	}
	if err := vm.connect(ctx); err != nil {
		return fail(fmt.Errorf("QEMU: %w%s", err, logTail(cfg.Dir)))
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
	pid, err := readPid(dir)
	if err != nil {
		return nil, err
	}
	pidfd, err := openPidfd(pid)
	if err != nil {
		return nil, ErrNotRunning
	}
	// A pid is only the VM's if the process's command line names this
	// directory's control socket: pids are reused. Checked after the
	// pidfd is open, so the pidfd is the VM's too.
	if !isOurs(pid, dir) {
		pidfd.Close()
		return nil, ErrNotRunning
	}
	vm := &VM{dir: dir, pid: pid, pidfd: pidfd, exited: make(chan struct{})}
	go vm.watch()
	if err := vm.connect(ctx); err != nil {
		vm.Close()
		return nil, err
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

// Pid is QEMU's process id.
func (vm *VM) Pid() int { return vm.pid }

// Exited is closed when QEMU has exited, for any reason.
func (vm *VM) Exited() <-chan struct{} { return vm.exited }

// Status is QEMU's run state: "running", "paused", "prelaunch",
// "shutdown", and the others of QMP's RunState.
func (vm *VM) Status(ctx context.Context) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	if err := vm.run(ctx, "query-status", &st); err != nil {
		return "", err
	}
	return st.Status, nil
}

// Quit asks QEMU to exit and waits for it; past ctx's end, or if QEMU
// does not answer, it is killed.
func (vm *VM) Quit(ctx context.Context) error {
	err := vm.run(ctx, "quit", nil)
	select {
	case <-vm.exited:
		return nil
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
	}
	if kerr := vm.kill(); kerr != nil {
		return errors.Join(err, kerr)
	}
	return nil
}

// Kill ends QEMU at once and waits for it.
func (vm *VM) Kill() error { return vm.kill() }

func (vm *VM) kill() error {
	var err error
	if vm.pidfd != nil {
		rc, rerr := vm.pidfd.SyscallConn()
		if rerr == nil {
			rerr = rc.Control(func(fd uintptr) { err = unix.PidfdSendSignal(int(fd), unix.SIGKILL, nil, 0) })
		}
		err = errors.Join(rerr, err)
	} else {
		err = unix.Kill(vm.pid, unix.SIGKILL) // Start, before the pidfd: still our unreaped child
	}
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("killing QEMU: %w", err)
	}
	select {
	case <-vm.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("QEMU %d did not exit after SIGKILL: %w", vm.pid, errdefs.ErrInternal)
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
		case <-vm.exited:
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
func (vm *VM) run(ctx context.Context, command string, ret any) error {
	mon, err := dialMonitor(ctx, filepath.Join(vm.dir, qmpSocket))
	if err != nil {
		return fmt.Errorf("QMP %s: %w", command, err)
	}
	defer mon.close()
	return mon.execute(ctx, command, nil, ret)
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

func isOurs(pid int, dir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	want := "unix:" + filepath.Join(dir, qmpSocket) + ","
	for _, arg := range bytes.Split(cmdline, []byte{0}) {
		if strings.HasPrefix(string(arg), want) {
			return true
		}
	}
	return false
}

func removeRuntimeFiles(dir string) {
	for _, f := range []string{qmpSocket, pidFile} {
		os.Remove(filepath.Join(dir, f))
	}
	for _, pattern := range []string{"agent-*.sock", "agent-*.lock"} {
		files, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, f := range files {
			os.Remove(f)
		}
	}
}

// logTail is the end of QEMU's log, for an error message: QEMU says
// there why it would not start.
func logTail(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, logFile))
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	return ": " + strings.TrimSpace(lines[len(lines)-1])
}
