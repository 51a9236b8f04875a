package agent_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// The built binary, as a child subreaper, reaps with wait4(-1) as it does
// as PID 1: exit statuses must still reach their execs.
func TestBinaryExec(t *testing.T) {
	c, _ := startBinary(t, "-subreaper")
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"true"}, 0},
		{[]string{"sh", "-c", "exit 3"}, 3},
		{[]string{"sh", "-c", "kill -9 $$"}, 137},
	} {
		_, _, st, err := run(t, c, v1.ExecSpec{Args: tc.args}, nil)
		if err != nil || st.Code != tc.code {
			t.Errorf("%v: %+v %v", tc.args, st, err)
		}
	}
	out, _, st, err := run(t, c, v1.ExecSpec{Args: []string{"cat"}}, strings.NewReader("round trip"))
	if err != nil || st.Code != 0 || out != "round trip" {
		t.Fatal(out, st, err)
	}
}

// Orphans reparent to the agent and must not stay zombies.
func TestBinaryReapsOrphans(t *testing.T) {
	c, _ := startBinary(t, "-subreaper")
	out, _, st, err := run(t, c, v1.ExecSpec{Args: []string{"sh", "-c", "sleep 0.3 & echo $!"}}, nil)
	if err != nil || st.Code != 0 {
		t.Fatal(st, err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(out))
	if pid == 0 {
		t.Fatalf("output %q", out)
	}
	waitFor(t, 5*time.Second, func() bool { return !pidExists(pid) })
}

// SIGTERM to the agent is forwarded to its processes, which may clean up;
// then the agent exits 0.
func TestBinarySIGTERMForwards(t *testing.T) {
	c, ap := startBinary(t, "-subreaper")
	mark := filepath.Join(t.TempDir(), "mark")
	pi, err := c.StartProcess(t.Context(), v1.ExecSpec{Args: []string{"sh", "-c", "trap 'echo term > " + mark + "; exit 0' TERM; while :; do sleep 0.05; done"}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the trap be installed
	if err := ap.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := ap.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("agent exit code %d", code)
	}
	if b, err := os.ReadFile(mark); err != nil || string(b) != "term\n" {
		t.Fatalf("mark %q %v", b, err)
	}
	if pidExists(pi.PID) {
		t.Fatalf("pid %d left behind", pi.PID)
	}
}

// Shutdown answers, then stops processes — SIGKILL after the grace for
// those ignoring SIGTERM — and the agent exits.
func TestBinaryShutdown(t *testing.T) {
	c, ap := startBinary(t, "-subreaper")
	pi, err := c.StartProcess(t.Context(), v1.ExecSpec{Args: []string{"sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if code := ap.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("agent exit code %d", code)
	}
	if pidExists(pi.PID) {
		t.Fatalf("pid %d left behind", pi.PID)
	}
}

// -listen-fd serves an inherited listening socket, and that descriptor
// does not leak into processes.
func TestBinaryListenFD(t *testing.T) {
	sock := socketPath(t)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	f, err := ul.File()
	ul.Close()
	if err != nil {
		t.Fatal(err)
	}
	startAgentProcess(t, []string{"-listen-fd", "3", "-subreaper"}, []*os.File{f})
	f.Close()
	c := v1.NewClient(unixDialer(sock))
	defer c.Close()
	waitVersion(t, c)
	out, _, st, err := run(t, c, v1.ExecSpec{Args: []string{"ls", "-l", "/proc/self/fd/"}}, nil)
	if err != nil || st.Code != 0 {
		t.Fatal(st, err)
	}
	if strings.Contains(out, "socket:") {
		t.Fatalf("a socket leaked into the process:\n%s", out)
	}
}

// -conn-fd serves one connected stream and exits when it closes.
func TestBinaryConnFD(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	agentEnd := os.NewFile(uintptr(fds[0]), "agent-end")
	hostEnd := os.NewFile(uintptr(fds[1]), "host-end")
	ap := startAgentProcess(t, []string{"-conn-fd", "3"}, []*os.File{agentEnd})
	agentEnd.Close()
	conn, err := net.FileConn(hostEnd)
	hostEnd.Close()
	if err != nil {
		t.Fatal(err)
	}
	dialed := false
	c := v1.NewClient(func(ctx context.Context) (net.Conn, error) {
		if dialed {
			return nil, os.ErrClosed
		}
		dialed = true
		return conn, nil
	})
	if _, err := c.Version(t.Context()); err != nil {
		t.Fatal(err)
	}
	out, _, st, err := run(t, c, v1.ExecSpec{Args: []string{"echo", "over one stream"}}, nil)
	if err != nil || st.Code != 0 || out != "over one stream\n" {
		t.Fatal(out, st, err)
	}
	c.Close()
	if code := ap.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("agent exit code %d", code)
	}
}

func TestBinaryFlags(t *testing.T) {
	bin := testutil.BuildBinary(t, "agentkernel-agent")
	out, err := exec.Command(bin, "-version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "agentkernel-agent ") {
		t.Fatalf("-version: %q %v", out, err)
	}
	for _, args := range [][]string{{}, {"-listen", "/x", "-listen-fd", "3"}, {"-bogus"}} {
		err := exec.Command(bin, args...).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit 2", args, err)
		}
	}
}

// -idle-exit ends the agent once nothing has happened for that long, but
// never while a process runs or a request is in flight.
func TestBinaryIdleExit(t *testing.T) {
	c, ap := startBinary(t, "-subreaper", "-idle-exit", "300ms")
	start := time.Now()
	if _, err := c.StartProcess(t.Context(), v1.ExecSpec{Args: []string{"sleep", "1"}}); err != nil {
		t.Fatal(err)
	}
	if code := ap.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("agent exit code %d", code)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("agent exited after %v while its process still ran", took)
	}
}
