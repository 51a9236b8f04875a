package vmproc

import (
	"bytes"
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

// ErrNotRunning is returned for a VM directory whose VMM is gone.
var ErrNotRunning = fmt.Errorf("VM is not running: %w", errdefs.ErrFailedPrecondition)

// killTimeout bounds how long Kill waits for the VMM to exit.
const killTimeout = 10 * time.Second

// VMM is what this package needs to know of one VMM.
type VMM struct {
	// Name names the VMM in errors: "starting QEMU: …".
	Name string
	// PidFile and LogFile are the names, in a VM directory, of the file
	// holding the VMM's pid and of the one taking its output.
	PidFile, LogFile string
	// RuntimeFiles are names or patterns (filepath.Match) of the files,
	// besides the pid file, a VMM leaves in the VM directory and a new
	// one must not find (it would not bind over a socket). They are
	// removed before a start and after a failed one.
	RuntimeFiles []string
	// Ours tells whether a process whose command line is args is the
	// VMM of dir, as the driver starts it.
	Ours func(dir string, args []string) bool
}

// Process is a VMM process started by Start or found by Open.
type Process struct {
	vmm    *VMM
	dir    string
	pid    int
	pidfd  *os.File // non-blocking: the poller tells when the VMM exits
	exited chan struct{}
}

// Start starts cmd as dir's VMM: in a session of its own, with its output
// to the log in dir, and its pid in the pid file. It refuses a dir whose
// VMM is alive. On error nothing is left running and dir holds no
// runtime files, only the log.
func (v *VMM) Start(dir string, cmd *exec.Cmd) (*Process, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("VM directory: %w", err)
	}
	if v.Alive(dir) {
		return nil, fmt.Errorf("VM in %s: already running: %w", dir, errdefs.ErrAlreadyExists)
	}
	// A killed VMM leaves its sockets.
	v.removeRuntimeFiles(dir)
	log, err := os.OpenFile(filepath.Join(dir, v.LogFile), os.O_CREATE|os.O_TRUNC|os.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("VM log: %w", err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		v.removeRuntimeFiles(dir)
		return nil, fmt.Errorf("starting %s: %w", v.Name, err)
	}
	// Opened before Wait can reap the child, so the pid is still its own.
	pidfd, err := openPidfd(cmd.Process.Pid)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		v.removeRuntimeFiles(dir)
		return nil, fmt.Errorf("%s pidfd: %w", v.Name, err)
	}
	p := &Process{vmm: v, dir: dir, pid: cmd.Process.Pid, pidfd: pidfd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	if err := os.WriteFile(filepath.Join(dir, v.PidFile), []byte(strconv.Itoa(p.pid)+"\n"), 0o600); err != nil {
		p.Abort()
		return nil, fmt.Errorf("VM pid file: %w", err)
	}
	return p, nil
}

// Open finds dir's VMM again. A VMM that is gone, or a pid file naming
// some other process, gives ErrNotRunning.
func (v *VMM) Open(dir string) (*Process, error) {
	pid, err := v.readPid(dir)
	if err != nil {
		return nil, err
	}
	pidfd, err := openPidfd(pid)
	if err != nil {
		return nil, ErrNotRunning
	}
	// Checked after the pidfd is open, so the pidfd is the VMM's too.
	if !v.isOurs(pid, dir) {
		pidfd.Close()
		return nil, ErrNotRunning
	}
	p := &Process{vmm: v, dir: dir, pid: pid, pidfd: pidfd, exited: make(chan struct{})}
	go p.watch()
	return p, nil
}

// Alive tells whether dir's VMM is running.
func (v *VMM) Alive(dir string) bool {
	pid, err := v.readPid(dir)
	return err == nil && v.isOurs(pid, dir)
}

// Remove deletes dir, which must not hold a running VMM.
func (v *VMM) Remove(dir string) error {
	if v.Alive(dir) {
		return fmt.Errorf("VM in %s is running: %w", dir, errdefs.ErrFailedPrecondition)
	}
	return os.RemoveAll(dir)
}

// removeRuntimeFiles removes the pid file and the RuntimeFiles from dir.
func (v *VMM) removeRuntimeFiles(dir string) {
	os.Remove(filepath.Join(dir, v.PidFile))
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		for _, pattern := range v.RuntimeFiles {
			if ok, _ := filepath.Match(pattern, e.Name()); ok {
				os.Remove(filepath.Join(dir, e.Name()))
				break
			}
		}
	}
}

// LogTail is the last line of the VMM's log in dir as ": line", or ""
// for an empty log: for an error message, since the VMM says there why
// it would not start or why it died.
func (v *VMM) LogTail(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, v.LogFile))
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	return ": " + strings.TrimSpace(lines[len(lines)-1])
}

// Pid is the VMM's process id.
func (p *Process) Pid() int { return p.pid }

// Exited is closed when the VMM has exited, for any reason.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Gone tells whether the VMM has exited.
func (p *Process) Gone() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Kill ends the VMM at once and waits (at most 10 s) for it to exit.
func (p *Process) Kill() error {
	var err error
	if p.pidfd != nil {
		rc, rerr := p.pidfd.SyscallConn()
		if rerr == nil {
			rerr = rc.Control(func(fd uintptr) { err = unix.PidfdSendSignal(int(fd), unix.SIGKILL, nil, 0) })
		}
		err = errors.Join(rerr, err)
	} else if !p.Gone() {
		err = unix.Kill(p.pid, unix.SIGKILL) // after Close
	}
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("killing %s: %w", p.vmm.Name, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(killTimeout):
		return fmt.Errorf("%s %d did not exit after SIGKILL: %w", p.vmm.Name, p.pid, errdefs.ErrInternal)
	}
}

// Abort ends a VMM that was started but is not to be used: it kills it,
// lets go of it and removes its runtime files.
func (p *Process) Abort() {
	p.Kill()
	p.Close()
	p.vmm.removeRuntimeFiles(p.dir)
}

// Close lets go of the VMM without stopping it. A Process found by Open
// no longer notices the exit then.
func (p *Process) Close() error {
	if p.pidfd != nil {
		p.pidfd.Close()
		p.pidfd = nil
	}
	return nil
}

// watch closes exited when a VMM found by Open exits: its pidfd becomes
// readable then. Close ends the wait without closing exited.
func (p *Process) watch() {
	rc, err := p.pidfd.SyscallConn()
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
		close(p.exited)
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

func (v *VMM) readPid(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, v.PidFile))
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

// isOurs tells whether process pid is dir's VMM: pids are reused, so the
// pid file alone does not say.
func (v *VMM) isOurs(pid int, dir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return v.Ours(dir, strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00"))
}
