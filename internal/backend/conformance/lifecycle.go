package conformance

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

func (s *suite) testLifecycle(t *testing.T) {
	ctx := t.Context()
	cfg, _, err := sandbox.Resolve(sandbox.Options{Image: s.h.Image, NetworkUnavailable: s.m.NetworkUnavailable()})
	if err != nil {
		t.Fatal(err)
	}
	name := "life-" + string(s.h.Backend.Type())
	info, err := s.m.Create(ctx, service.CreateRequest{Name: name, Backend: string(s.h.Backend.Type()), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.m.Remove(context.Background(), name)
	if info.Status != sandbox.StatusCreated || info.ID == "" {
		t.Fatalf("after create: %+v", info)
	}
	// Exec before start is a failed precondition, not a hang or a crash.
	if r := s.exec(ctx, name, agentv1.ExecSpec{Args: []string{"true"}}, nil); !errors.Is(r.err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("exec in created sandbox: err = %v, want failed precondition", r.err)
	}
	if info, err = s.m.Start(ctx, name); err != nil || info.Status != sandbox.StatusRunning {
		t.Fatalf("start: %+v %v", info, err)
	}
	if _, err := s.m.Start(ctx, name); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("second start: err = %v, want failed precondition", err)
	}
	s.sh(t, name, "echo persisted > /root/state")

	// Lookup by id works like lookup by name.
	if byID, err := s.m.Get(ctx, info.ID); err != nil || byID.Name != name {
		t.Fatalf("get by id: %+v %v", byID, err)
	}

	if info, err = s.m.Stop(ctx, name); err != nil || info.Status != sandbox.StatusStopped {
		t.Fatalf("stop: %+v %v", info, err)
	}
	if r := s.exec(ctx, name, agentv1.ExecSpec{Args: []string{"true"}}, nil); !errors.Is(r.err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("exec in stopped sandbox: err = %v, want failed precondition", r.err)
	}
	if _, err := s.m.Stop(ctx, name); err != nil {
		t.Fatalf("stopping a stopped sandbox should be a no-op: %v", err)
	}
	// The filesystem survives stop/start.
	if _, err := s.m.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	if got := s.sh(t, name, "cat /root/state"); got != "persisted\n" {
		t.Fatalf("file after restart = %q", got)
	}
	if err := s.m.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.Get(ctx, name); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("get after remove: err = %v, want not found", err)
	}
	if err := s.m.Remove(ctx, name); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second remove: err = %v, want not found", err)
	}
}

func (s *suite) testBadInput(t *testing.T) {
	ctx := t.Context()
	before, err := s.m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, _ := sandbox.Resolve(sandbox.Options{Image: s.h.Image, NetworkUnavailable: s.m.NetworkUnavailable()})
	bk := string(s.h.Backend.Type())
	for _, tc := range []struct {
		name string
		req  service.CreateRequest
		kind error
	}{
		{"dash at start", service.CreateRequest{Name: "-bad", Backend: bk, Config: cfg}, errdefs.ErrInvalidArgument},
		{"dot", service.CreateRequest{Name: "a.b", Backend: bk, Config: cfg}, errdefs.ErrInvalidArgument},
		{"too long", service.CreateRequest{Name: strings.Repeat("a", 64), Backend: bk, Config: cfg}, errdefs.ErrInvalidArgument},
		{"unknown backend", service.CreateRequest{Name: "ok1", Backend: "nope", Config: cfg}, errdefs.ErrInvalidArgument},
		{"duplicate", service.CreateRequest{Name: s.shared, Backend: bk, Config: cfg}, errdefs.ErrAlreadyExists},
		{"unknown image", service.CreateRequest{Name: "ok2", Backend: bk, Config: func() sandbox.Config {
			c := cfg
			c.Image = "no-such-image-anywhere:1"
			return c
		}()}, nil},
	} {
		_, err := s.m.Create(ctx, tc.req)
		if err == nil {
			t.Errorf("%s: create succeeded", tc.name)
		} else if tc.kind != nil && !errors.Is(err, tc.kind) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.kind)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %q", tc.name, err)
		}
	}
	for _, op := range []func() error{
		func() error { _, err := s.m.Start(ctx, "missing"); return err },
		func() error { _, err := s.m.Stop(ctx, "missing"); return err },
		func() error { return s.m.Remove(ctx, "missing") },
		func() error { return s.exec(ctx, "missing", agentv1.ExecSpec{Args: []string{"true"}}, nil).err },
	} {
		if err := op(); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("operation on a missing sandbox: err = %v, want not found", err)
		}
	}
	if r := s.exec(ctx, s.shared, agentv1.ExecSpec{}, nil); !errors.Is(r.err, errdefs.ErrInvalidArgument) {
		t.Errorf("exec with no command: err = %v, want invalid argument", r.err)
	}
	after, err := s.m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("bad input changed the sandbox list: %d before, %d after", len(before), len(after))
	}
}

// testDeadSandbox kills a sandbox behind the manager's back (as a crash or
// the OOM killer would): it must read as stopped, gc must release what it
// held, and it must start again.
func (s *suite) testDeadSandbox(t *testing.T) {
	name := s.create(t, "dead", nil)
	s.sh(t, name, "echo kept > /root/kept")
	info, err := s.m.Get(t.Context(), name)
	if err != nil || info.PID <= 0 {
		t.Fatalf("info: %+v %v", info, err)
	}
	if err := syscall.Kill(info.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, func() bool {
		info, err := s.m.Get(t.Context(), name)
		return err == nil && info.Status == sandbox.StatusStopped && info.Crashed
	}) {
		t.Fatal("killed sandbox never read as stopped and crashed")
	}
	if r := s.exec(t.Context(), name, agentv1.ExecSpec{Args: []string{"true"}}, nil); !errors.Is(r.err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("exec in dead sandbox: %v, want failed precondition", r.err)
	}
	if _, err := s.m.GC(t.Context()); err != nil {
		t.Fatalf("gc: %v", err)
	}
	if _, err := s.m.Start(t.Context(), name); err != nil {
		t.Fatalf("restart after crash: %v", err)
	}
	if info, err := s.m.Get(t.Context(), name); err != nil || info.Crashed {
		t.Fatalf("restarted sandbox: %+v %v", info, err)
	}
	if got := s.sh(t, name, "cat /root/kept"); got != "kept\n" {
		t.Fatalf("file after crash and restart = %q", got)
	}
}

// testGracefulStop: stop gives processes a SIGTERM they can act on before
// the sandbox ends.
func (s *suite) testGracefulStop(t *testing.T) {
	name := s.create(t, "graceful", nil)
	if _, err := s.m.StartProcess(t.Context(), name, agentv1.ExecSpec{
		Args: []string{"sh", "-c", "trap 'echo cleaned > /root/term; exit 0' TERM; while :; do sleep 0.05; done"},
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the trap be installed
	if _, err := s.m.Stop(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.Start(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	if got := s.sh(t, name, "cat /root/term"); got != "cleaned\n" {
		t.Fatalf("the TERM handler's file = %q", got)
	}
}
