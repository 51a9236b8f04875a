//go:build linux

package service_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

func TestExtendTTL(t *testing.T) {
	m := newManager(t)
	cfg, _, _ := sandbox.Resolve(sandbox.Options{Network: new(false)})
	if _, err := m.Create(t.Context(), service.CreateRequest{Name: "box", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Remove(context.Background(), "box") })

	// No TTL yet: one from now.
	before := time.Now()
	info, err := m.ExtendTTL(t.Context(), "box", time.Hour)
	if err != nil || info.ExpiresAt == nil {
		t.Fatalf("extend: %+v %v", info, err)
	}
	if got := *info.ExpiresAt; got.Before(before.Add(time.Hour)) || got.After(time.Now().Add(time.Hour)) {
		t.Fatalf("expiry %s, want an hour from %s", got, before)
	}
	// A TTL in the future grows from that expiry, and the change is stored.
	first := *info.ExpiresAt
	info, err = m.ExtendTTL(t.Context(), info.ID, 30*time.Minute) // by id too
	if err != nil || !info.ExpiresAt.Equal(first.Add(30*time.Minute)) {
		t.Fatalf("second extend: %+v %v, want %s", info, err, first.Add(30*time.Minute))
	}
	if got, err := m.Get(t.Context(), "box"); err != nil || !got.ExpiresAt.Equal(*info.ExpiresAt) {
		t.Fatalf("stored expiry: %+v %v", got, err)
	}

	// Concurrent extensions serialise on the lock: none is lost.
	want := info.ExpiresAt.Add(10 * time.Minute)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := m.ExtendTTL(context.Background(), "box", time.Minute); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, _ := m.Get(t.Context(), "box"); !got.ExpiresAt.Equal(want) {
		t.Fatalf("after concurrent extends: %s, want %s", got.ExpiresAt, want)
	}

	for _, by := range []time.Duration{0, -time.Second, service.MaxExtend + time.Second} {
		if _, err := m.ExtendTTL(t.Context(), "box", by); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("extend by %s: %v, want invalid argument", by, err)
		}
	}
	if _, err := m.ExtendTTL(t.Context(), "no-such-box", time.Hour); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown sandbox: %v", err)
	}
}

// An expired sandbox (not yet collected) gets its new TTL from now.
func TestExtendTTLAfterExpiry(t *testing.T) {
	m := newManager(t)
	cfg, _, _ := sandbox.Resolve(sandbox.Options{Network: new(false), TTL: time.Millisecond})
	if _, err := m.Create(t.Context(), service.CreateRequest{Name: "late", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	before := time.Now()
	info, err := m.ExtendTTL(t.Context(), "late", time.Hour)
	if err != nil || info.ExpiresAt.Before(before.Add(time.Hour)) {
		t.Fatalf("extend: %+v %v", info, err)
	}
	if removed, err := m.GC(t.Context()); err != nil || len(removed) != 0 {
		t.Fatalf("gc removed an extended sandbox: %v %v", removed, err)
	}
	if err := m.Remove(t.Context(), "late"); err != nil {
		t.Fatal(err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90s": 90 * time.Second, "30m": 30 * time.Minute, "1h30m": 90 * time.Minute,
		"2d": 48 * time.Hour, "1.5d": 36 * time.Hour,
	} {
		if got, err := service.ParseDuration(in); err != nil || got != want {
			t.Errorf("%q: %s %v, want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "0", "0s", "-1h", "d", "-2d", "nand", "infd", "1e300d", "1x"} {
		if _, err := service.ParseDuration(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v, want invalid argument", in, err)
		}
	}
}
