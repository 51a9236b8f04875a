package cli

// End-to-end tests of the terminal paths (exec -t, attach), driven through
// a real pseudo-terminal.

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ptyRun is agentkernel running on a local pseudo-terminal.
type ptyRun struct {
	t    *testing.T
	cmd  *exec.Cmd
	ptmx *os.File // our side
	tty  *os.File // agentkernel's terminal, kept open to inspect its mode

	mu  sync.Mutex
	out strings.Builder
}

func startOnPTY(t *testing.T, e *e2e, rows, cols uint16, args ...string) *ptyRun {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: rows, Cols: cols}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	p := &ptyRun{t: t, cmd: e.command(ctx, args...), ptmx: ptmx, tty: tty}
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = tty, tty, tty
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		p.cmd.Wait()
		ptmx.Close()
		tty.Close()
	})
	return p
}

func (p *ptyRun) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitOutput waits until the output contains s.
func (p *ptyRun) waitOutput(s string, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(p.output(), s) {
			return true
		}
	}
	return false
}

func (p *ptyRun) send(s string) {
	if _, err := p.ptmx.Write([]byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

// wait waits for agentkernel to exit and returns its exit code.
func (p *ptyRun) wait() int {
	err := p.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		p.t.Fatal(err)
	}
	return 0
}

func termFlags(t *testing.T, f *os.File) uint32 {
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag & (unix.ECHO | unix.ICANON | unix.ISIG)
}

func TestE2ETTY(t *testing.T) {
	e := newE2E(t)
	const name = "e2e-tty"
	e.ok("create", "--start", name)
	defer e.ok("remove", name)

	p := startOnPTY(t, e, 30, 90, "exec", "-t", name, "--", "sh", "-c", "tty; stty size")
	if code := p.wait(); code != 0 {
		t.Fatalf("exec -t: exit %d, output %q", code, p.output())
	}
	if !p.waitOutput("30 90", 5*time.Second) || !strings.Contains(p.output(), "/dev/pts/") {
		t.Errorf("exec -t: output %q, want a /dev/pts tty of 30x90", p.output())
	}

	// run -t: the same through an ephemeral sandbox, which is removed.
	p = startOnPTY(t, e, 25, 70, "run", "-t", "--", "sh", "-c", "stty size; exit 3")
	if code := p.wait(); code != 3 {
		t.Errorf("run -t: exit %d, want 3; output %q", code, p.output())
	}
	if !p.waitOutput("25 70", 5*time.Second) {
		t.Errorf("run -t: output %q, want 25 70", p.output())
	}
	if n := len(e.list()); n != 1 {
		t.Errorf("run -t left a sandbox: %d sandboxes", n)
	}

	// Without -t, a terminal stdin is not read and no PTY is allocated.
	p = startOnPTY(t, e, 30, 90, "exec", name, "--", "sh", "-c", "tty; exit 4")
	if code := p.wait(); code != 4 {
		t.Errorf("exec without -t: exit %d, want 4", code)
	}
	if !p.waitOutput("not a tty", 5*time.Second) {
		t.Errorf("exec without -t got a tty: %q", p.output())
	}
}

func TestE2EAttach(t *testing.T) {
	e := newE2E(t)
	const name = "e2e-attach"
	e.ok("create", "--start", name)
	defer e.ok("remove", name)

	p := startOnPTY(t, e, 24, 80, "attach", name)
	before := termFlags(t, p.tty)
	p.send("stty size\n")
	if !p.waitOutput("24 80", 20*time.Second) {
		t.Fatalf("no window size 24 80 in %q", p.output())
	}
	if raw := termFlags(t, p.tty); raw&(unix.ECHO|unix.ICANON) != 0 {
		t.Errorf("the local terminal is not in raw mode while attached (lflag %#x)", raw)
	}
	if err := pty.Setsize(p.ptmx, &pty.Winsize{Rows: 40, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	// The resize travels as SIGWINCH, then a request: poll for it.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.output(), "40 100") {
		if time.Now().After(deadline) {
			t.Fatalf("the resize never arrived: %q", p.output())
		}
		p.send("stty size\n")
		p.waitOutput("40 100", 500*time.Millisecond)
	}
	p.send("exit 7\n")
	if code := p.wait(); code != 7 {
		t.Errorf("attach: exit %d, want 7", code)
	}
	if after := termFlags(t, p.tty); after != before {
		t.Errorf("terminal not restored: lflag %#x, was %#x", after, before)
	}
}
