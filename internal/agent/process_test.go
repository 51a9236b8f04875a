package agent_test

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/agent"
)

func TestDetachedProcess(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	ctx := t.Context()
	pi, err := c.StartProcess(ctx, v1.ExecSpec{Args: []string{"sh", "-c", "echo started; echo oops >&2; trap 'echo bye; exit 7' TERM; while :; do sleep 0.05; done"}})
	if err != nil {
		t.Fatal(err)
	}
	if pi.ID == "" || pi.PID == 0 || pi.State != v1.StateRunning {
		t.Fatalf("started %+v", pi)
	}
	waitFor(t, 5*time.Second, func() bool {
		out, _, _ := c.ProcessLogs(ctx, pi.ID, "stdout")
		return string(out) == "started\n"
	})
	waitFor(t, 5*time.Second, func() bool {
		errOut, dropped, err := c.ProcessLogs(ctx, pi.ID, "stderr")
		return err == nil && string(errOut) == "oops\n" && dropped == 0
	})
	list, err := c.Processes(ctx)
	if err != nil || len(list) != 1 || list[0].ID != pi.ID {
		t.Fatalf("list %+v %v", list, err)
	}
	var e *v1.Error
	if err := c.DeleteProcess(ctx, pi.ID); !errors.As(err, &e) || e.Code != v1.CodeFailedPrecondition {
		t.Fatalf("delete running: %v", err)
	}
	if _, err := c.KillProcess(ctx, pi.ID, 0); err != nil { // SIGTERM by default
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool {
		p, err := c.Process(ctx, pi.ID)
		return err == nil && p.State == v1.StateExited
	})
	p, _ := c.Process(ctx, pi.ID)
	if p.Exit == nil || p.Exit.Code != 7 || p.ExitedAt == nil {
		t.Fatalf("exited %+v", p)
	}
	waitFor(t, 5*time.Second, func() bool {
		out, _, _ := c.ProcessLogs(ctx, pi.ID, "stdout")
		return string(out) == "started\nbye\n"
	})
	// Killing an exited process is a no-op that reports its status.
	if p, err := c.KillProcess(ctx, pi.ID, int(syscall.SIGKILL)); err != nil || p.State != v1.StateExited {
		t.Fatal(p, err)
	}
	if err := c.DeleteProcess(ctx, pi.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Process(ctx, pi.ID); !errors.As(err, &e) || e.Code != v1.CodeNotFound {
		t.Fatalf("after delete: %v", err)
	}
	if _, _, err := c.ProcessLogs(ctx, "nope", "stdout"); !errors.As(err, &e) || e.Code != v1.CodeNotFound {
		t.Fatalf("logs of unknown: %v", err)
	}
}

func TestDetachedLogsKeepTail(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	ctx := t.Context()
	// 3 MiB of lines "NNNNNNN\n", numbered, so the tail is checkable.
	pi, err := c.StartProcess(ctx, v1.ExecSpec{Args: []string{"sh", "-c", "seq -w 1 393216 | sed 's/^/x/'"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool {
		p, err := c.Process(ctx, pi.ID)
		return err == nil && p.State == v1.StateExited
	})
	var out []byte
	var dropped int64
	waitFor(t, 5*time.Second, func() bool {
		out, dropped, err = c.ProcessLogs(ctx, pi.ID, "stdout")
		return err == nil && strings.HasSuffix(string(out), "x393216\n")
	})
	const total = 393216 * 8
	if len(out) != 1<<20 || dropped != total-(1<<20) {
		t.Fatalf("kept %d bytes, dropped %d; want %d and %d", len(out), dropped, 1<<20, total-(1<<20))
	}
}

func TestDetachedErrors(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	ctx := t.Context()
	var e *v1.Error
	if _, err := c.StartProcess(ctx, v1.ExecSpec{Args: []string{"no-such-command-xyz"}}); !errors.As(err, &e) || e.Code != v1.CodeCommandNotFound {
		t.Fatalf("not found: %v", err)
	}
	if _, err := c.StartProcess(ctx, v1.ExecSpec{Args: []string{"true"}, TTY: true}); !errors.As(err, &e) || e.Code != v1.CodeInvalidArgument {
		t.Fatalf("tty: %v", err)
	}
	// Timeouts apply to detached processes too.
	pi, err := c.StartProcess(ctx, v1.ExecSpec{Args: []string{"sleep", "30"}, TimeoutMS: 100})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool {
		p, err := c.Process(ctx, pi.ID)
		return err == nil && p.Exit != nil && p.Exit.TimedOut && p.Exit.Code == 137
	})
}
