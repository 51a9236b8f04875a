//go:build linux

package service_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// poolManager returns a manager with a warm pool whose background work runs
// in a goroutine; wait() returns once the last one finished.
func poolManager(t *testing.T, idle time.Duration) (*service.Manager, func()) {
	done := make(chan error, 16)
	var m *service.Manager
	m = newManager(t, func(o *service.Options) {
		o.PoolSize, o.PoolIdle = 1, idle
		o.Background = func(remove string) error {
			go func() {
				err := m.Remove(context.Background(), remove)
				done <- errors.Join(err, m.MaintainPool(context.Background()))
			}()
			return nil
		}
	})
	// Registered after newManager's, so it runs first: drain, then close.
	t.Cleanup(func() { m.DrainPool(context.Background()) })
	return m, func() {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("pool maintenance: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("pool maintenance did not finish")
		}
	}
}

func pooled(t *testing.T, m *service.Manager) []string {
	t.Helper()
	list, err := m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range list {
		if !in.Pooled {
			t.Errorf("non-pool sandbox left: %s (%s)", in.Name, in.Status)
			continue
		}
		names = append(names, in.Name)
	}
	return names
}

func runIn(t *testing.T, m *service.Manager, env []string, script string) (*service.Info, string) {
	t.Helper()
	cfg, _, _ := sandbox.Resolve(sandbox.Options{Network: new(false), Env: env})
	var out strings.Builder
	info, st, err := m.Run(t.Context(), service.RunRequest{
		Create: service.CreateRequest{Config: cfg},
		Exec:   service.ExecRequest{Spec: agentv1.ExecSpec{Args: []string{"sh", "-c", script}}, Stdout: &out, Stderr: io.Discard},
	})
	if err != nil || st.Code != 0 {
		t.Fatalf("run: %+v %v", st, err)
	}
	return info, out.String()
}

func TestPoolClaimsAndRefills(t *testing.T) {
	before := testutil.Snapshot()
	m, wait := poolManager(t, time.Minute)

	runIn(t, m, nil, "true") // a miss: starts the pool for this configuration
	wait()
	warm := pooled(t, m)
	if len(warm) != 1 {
		t.Fatalf("pool after first run: %v", warm)
	}
	// The next run with the same sandbox config (other env) claims it.
	info, out := runIn(t, m, []string{"FOO=claimed"}, "echo $FOO; hostname")
	if info.Name != warm[0] || out != "claimed\n"+warm[0]+"\n" {
		t.Fatalf("second run used %s (output %q), want the pool's %s", info.Name, out, warm[0])
	}
	wait()
	refilled := pooled(t, m)
	if len(refilled) != 1 || refilled[0] == warm[0] {
		t.Fatalf("pool after the claim: %v (claimed %s)", refilled, warm[0])
	}

	// A pool sandbox that died is replaced.
	in, _ := m.Get(t.Context(), refilled[0])
	syscall.Kill(in.PID, syscall.SIGKILL)
	waitStopped(t, m, refilled[0])
	if err := m.MaintainPool(t.Context()); err != nil {
		t.Fatal(err)
	}
	if now := pooled(t, m); len(now) != 1 || now[0] == refilled[0] {
		t.Fatalf("pool after its sandbox died: %v", now)
	}
	if removed, err := m.DrainPool(t.Context()); err != nil || len(removed) != 1 {
		t.Fatalf("drain: %v %v", removed, err)
	}
	m.Close()
	testutil.CheckNoLeaks(t, before)
}

func TestPoolIdleExpiry(t *testing.T) {
	m, wait := poolManager(t, 2*time.Second)
	runIn(t, m, nil, "true")
	wait()
	warm := pooled(t, m)
	if len(warm) != 1 {
		t.Fatalf("pool: %v", warm)
	}
	// Unused, the pool sandbox stops itself; maintenance then removes it
	// and does not refill a configuration nobody ran lately.
	waitStopped(t, m, warm[0])
	if err := m.MaintainPool(t.Context()); err != nil {
		t.Fatal(err)
	}
	if left := pooled(t, m); len(left) != 0 {
		t.Fatalf("pool after idling: %v", left)
	}
}

// waitStopped waits until a sandbox reads as stopped.
func waitStopped(t *testing.T, m *service.Manager, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		in, err := m.Get(t.Context(), name)
		if err == nil && in.Status == sandbox.StatusStopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandbox %s still %+v (%v)", name, in, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
