package agent_test

import (
	"context"
	"io"
	"log/slog"
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
	"github.com/agentkernel-go/agentkernel/internal/agent"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

// socketPath returns a unix socket path short enough for sun_path.
func socketPath(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 90 {
		d, err := os.MkdirTemp("", "ak")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	return filepath.Join(dir, "agent.sock")
}

func unixDialer(path string) v1.Dialer {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
}

// testLogger sends the agent's logs to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startInProcess runs the agent server in this test process and returns a
// client for it. Cleanup stops the server and checks nothing it started is
// still running.
func startInProcess(t *testing.T, opts agent.Options) *v1.Client {
	t.Helper()
	sock := socketPath(t)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.Grace == 0 {
		opts.Grace = 2 * time.Second
	}
	s := agent.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	c := v1.NewClient(unixDialer(sock))
	t.Cleanup(func() {
		c.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		// Serve stopped every process it started and reaped them all.
		if kids := childrenOf(os.Getpid()); len(kids) > 0 {
			t.Errorf("processes left behind (or unreaped): %v", kids)
		}
	})
	return c
}

// agentProcess is the agent binary running as a child of the test.
type agentProcess struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once it exited and was waited for
}

// startBinary runs the built agent binary as a child subreaper listening on
// a unix socket, and returns a client for it.
func startBinary(t *testing.T, extra ...string) (*v1.Client, *agentProcess) {
	t.Helper()
	sock := socketPath(t)
	ap := startAgentProcess(t, append([]string{"-listen", sock}, extra...), nil)
	c := v1.NewClient(unixDialer(sock))
	t.Cleanup(func() { c.Close() })
	waitVersion(t, c)
	return c, ap
}

func waitVersion(t *testing.T, c *v1.Client) {
	t.Helper()
	waitFor(t, 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.Version(ctx)
		return err == nil
	})
}

// startAgentProcess starts the agent binary with args (plus debug logging
// and a 1s grace) and files as fds 3, 4, ... Cleanup stops it with SIGTERM
// and fails the test if it does not exit.
func startAgentProcess(t *testing.T, args []string, files []*os.File) *agentProcess {
	t.Helper()
	bin := testutil.BuildBinary(t, "agentkernel-agent")
	cmd := exec.Command(bin, append([]string{"-log-level", "debug", "-grace", "1s"}, args...)...)
	cmd.Stderr = testWriter{t}
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ap := &agentProcess{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(ap.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-ap.exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-ap.exited
			t.Error("agent did not exit on SIGTERM")
		}
	})
	return ap
}

// wait waits for the agent to exit and returns its exit code.
func (ap *agentProcess) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-ap.exited:
		return ap.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("agent still running after %v", d)
		return -1
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pidGone reports whether pid no longer exists (or is a zombie).
func pidGone(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// The state is the field after the ")" closing the command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// run execs args and returns stdout, stderr and the status.
func run(t *testing.T, c *v1.Client, spec v1.ExecSpec, stdin io.Reader) (string, string, v1.ExitStatus, error) {
	t.Helper()
	var out, errb strings.Builder
	st, err := c.Exec(t.Context(), spec, stdin, &out, &errb)
	return out.String(), errb.String(), st, err
}

// pidExists reports whether /proc has pid at all, zombies included: a
// zombie means nobody reaped it.
func pidExists(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return err == nil
}

// childrenOf lists the pids (zombies included) whose parent is ppid.
func childrenOf(ppid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // state, ppid, ...
		if len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
