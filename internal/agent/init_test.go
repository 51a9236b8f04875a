package agent_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// TestBinaryAsPID1 runs the agent as init of a new pid namespace, as the
// native backend does: it must reap orphans, survive stray signals, and on
// SIGTERM forward it to every process, then exit cleanly.
func TestBinaryAsPID1(t *testing.T) {
	testutil.RequireRoot(t)
	unshare, err := exec.LookPath("unshare")
	testutil.Require(t, err == nil, "needs unshare(1) from util-linux")
	bin := testutil.BuildBinary(t, "agentkernel-agent")
	sock := socketPath(t)

	cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "--kill-child",
		bin, "-listen", sock, "-grace", "1s", "-log-level", "debug")
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // --kill-child takes the namespace down with it
		<-exited
	})

	c := v1.NewClient(unixDialer(sock))
	defer c.Close()
	waitVersion(t, c)
	v, err := c.Version(t.Context())
	if err != nil || v.PID != 1 {
		t.Fatalf("version %+v %v: want the agent as pid 1", v, err)
	}

	// An orphan is reparented to the agent and must be reaped, not left a
	// zombie.
	out, _, st, err := run(t, c, v1.ExecSpec{Args: []string{"sh", "-c", "sleep 0.2 & echo $!"}}, nil)
	if err != nil || st.Code != 0 {
		t.Fatal(st, err)
	}
	orphan := strings.TrimSpace(out)
	waitFor(t, 5*time.Second, func() bool {
		_, _, st, err := run(t, c, v1.ExecSpec{Args: []string{"test", "-e", "/proc/" + orphan}}, nil)
		return err == nil && st.Code == 1
	})

	// Signals a workload might send init do not kill it.
	_, _, st, err = run(t, c, v1.ExecSpec{Args: []string{"sh", "-c", "kill -QUIT 1; kill -USR1 1; kill -USR2 1; kill -PIPE 1; kill -CHLD 1"}}, nil)
	if err != nil || st.Code != 0 {
		t.Fatal(st, err)
	}
	if _, err := c.Version(t.Context()); err != nil {
		t.Fatalf("agent gone after stray signals: %v", err)
	}

	// SIGTERM reaches processes the agent did not start directly (an
	// orphan in its own session), and the agent exits 0 once all are gone.
	mark := filepath.Join(t.TempDir(), "mark")
	_, _, st, err = run(t, c, v1.ExecSpec{Args: []string{"sh", "-c",
		"setsid sh -c \"trap 'echo term > " + mark + "; exit 0' TERM; while :; do sleep 0.05; done\" >/dev/null 2>&1 &"}}, nil)
	if err != nil || st.Code != 0 {
		t.Fatal(st, err)
	}
	time.Sleep(200 * time.Millisecond) // let the trap be installed
	agentPID := 0
	waitFor(t, 5*time.Second, func() bool {
		kids := childrenOf(cmd.Process.Pid)
		if len(kids) == 1 {
			agentPID = kids[0]
		}
		return agentPID != 0
	})
	if err := syscall.Kill(agentPID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("agent as pid 1 did not exit on SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if b, err := os.ReadFile(mark); err != nil || string(b) != "term\n" {
		t.Fatalf("the orphan did not get SIGTERM: %q %v", b, err)
	}
}
