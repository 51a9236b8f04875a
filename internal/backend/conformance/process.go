package conformance

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

func (s *suite) testDetached(t *testing.T) {
	ctx := t.Context()
	p, err := s.m.StartProcess(ctx, s.shared, agentv1.ExecSpec{Args: []string{"sh", "-c", "echo out; echo err >&2; exec sleep 60"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID == "" || p.PID <= 0 || p.State != agentv1.StateRunning {
		t.Fatalf("started: %+v", p)
	}
	list, err := s.m.Processes(ctx, s.shared)
	if err != nil || !containsProcess(list, p.ID) {
		t.Fatalf("list: %+v %v", list, err)
	}
	if !eventually(5*time.Second, func() bool {
		out, _, err := s.m.ProcessLogs(ctx, s.shared, p.ID, "stdout")
		errOut, _, err2 := s.m.ProcessLogs(ctx, s.shared, p.ID, "stderr")
		return err == nil && err2 == nil && string(out) == "out\n" && string(errOut) == "err\n"
	}) {
		t.Fatal("detached logs never showed out/err")
	}
	if _, err := s.m.KillProcess(ctx, s.shared, p.ID, int(syscall.SIGTERM)); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, func() bool {
		q, err := s.m.Process(ctx, s.shared, p.ID)
		return err == nil && q.State == agentv1.StateExited && q.Exit != nil && q.Exit.Signal == int(syscall.SIGTERM)
	}) {
		q, err := s.m.Process(ctx, s.shared, p.ID)
		t.Fatalf("process after kill: %+v %v", q, err)
	}
	if _, err := s.m.Process(ctx, s.shared, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown process: %v, want not found", err)
	}
	if _, err := s.m.StartProcess(ctx, s.shared, agentv1.ExecSpec{Args: []string{"no-such-cmd-xyz"}}); err == nil || !strings.Contains(err.Error(), "no-such-cmd-xyz") {
		t.Errorf("detached missing command: %v", err)
	}
}

func containsProcess(list []agentv1.ProcessInfo, id string) bool {
	for _, p := range list {
		if p.ID == id {
			return true
		}
	}
	return false
}
