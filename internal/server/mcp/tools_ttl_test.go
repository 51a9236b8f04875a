package mcpserver_test

import (
	"strings"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

func TestExtendTTL(t *testing.T) {
	testutil.RequireRoot(t)
	cs, mgr := connect(t)
	cfg, _, _ := sandbox.Resolve(sandbox.Options{})
	if _, err := mgr.Create(t.Context(), service.CreateRequest{Name: "ttl", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	defer mgr.Remove(t.Context(), "ttl")

	var out struct {
		Name      string     `json:"name"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	// by defaults to 1h, from now when the sandbox has no TTL.
	before := time.Now()
	res := call(t, cs, "sandbox_extend_ttl", map[string]any{"name": "ttl"})
	structured(t, res, &out)
	if res.IsError || out.Name != "ttl" || out.ExpiresAt == nil || !strings.HasPrefix(text(res), "Sandbox 'ttl' now expires at ") {
		t.Fatalf("extend: %v %q %+v", res.IsError, text(res), out)
	}
	if out.ExpiresAt.Before(before.Add(time.Hour)) || out.ExpiresAt.After(time.Now().Add(time.Hour)) {
		t.Fatalf("expiry %s, want an hour after %s", out.ExpiresAt, before)
	}
	// Then it adds to the current expiry.
	first := *out.ExpiresAt
	res = call(t, cs, "sandbox_extend_ttl", map[string]any{"name": "ttl", "by": "1.5d"})
	structured(t, res, &out)
	if res.IsError || !out.ExpiresAt.Equal(first.Add(36*time.Hour)) {
		t.Fatalf("extend by 1.5d: %q %+v, want %s", text(res), out, first.Add(36*time.Hour))
	}
	if info, err := mgr.Get(t.Context(), "ttl"); err != nil || !info.ExpiresAt.Equal(*out.ExpiresAt) {
		t.Fatalf("stored: %+v %v", info, err)
	}
	fails(t, cs, "sandbox_extend_ttl", map[string]any{"name": "ttl", "by": "31d"}, "at most")
	fails(t, cs, "sandbox_extend_ttl", map[string]any{"name": "ttl", "by": "-1h"}, "want a positive duration")
	fails(t, cs, "sandbox_extend_ttl", map[string]any{"name": "nope", "by": "1h"}, "not found")
}
