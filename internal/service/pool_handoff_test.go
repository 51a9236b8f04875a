//go:build linux

package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// A lingering maintainer takes runs' sandboxes over its socket, removes
// them, stops when asked (finishing what it acknowledged) or when idle,
// and then nobody takes hand-offs any more.
func TestPoolHandOff(t *testing.T) {
	m, _ := poolManager(t, time.Minute)
	if err := m.HandOff("nobody-listens"); err == nil {
		t.Fatal("a hand-off succeeded with no maintainer")
	}
	lingered := make(chan error, 1)
	go func() { lingered <- m.LingerPool(context.Background(), time.Minute) }()
	waitFor(t, func() bool { return m.HandOff("no-such-sandbox") == nil })

	// A second maintainer sees the first and leaves at once.
	if err := m.LingerPool(t.Context(), time.Minute); err != nil {
		t.Fatal(err)
	}
	cfg, _, _ := sandbox.Resolve(sandbox.Options{Network: new(false)})
	for _, name := range []string{"handoff-a", "handoff-b"} {
		if _, err := m.Create(t.Context(), service.CreateRequest{Name: name, Config: cfg}); err != nil {
			t.Fatal(err)
		}
		if err := m.HandOff(name); err != nil {
			t.Fatalf("hand-off of %s: %v", name, err)
		}
	}
	if err := m.HandOff("bad name!"); err == nil {
		t.Fatal("a bad name was acknowledged")
	}
	if err := m.StopPoolMaintainer(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lingered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the maintainer did not stop")
	}
	for _, name := range []string{"handoff-a", "handoff-b"} {
		if _, err := m.Get(t.Context(), name); err == nil {
			t.Errorf("%s was acknowledged but not removed", name)
		}
	}
	if err := m.HandOff("late"); err == nil {
		t.Fatal("a stopped maintainer took a hand-off")
	}

	// Idle for its linger time, it goes by itself.
	go func() { lingered <- m.LingerPool(context.Background(), 200*time.Millisecond) }()
	select {
	case err := <-lingered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an idle maintainer did not exit")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition never met")
		}
	}
}
