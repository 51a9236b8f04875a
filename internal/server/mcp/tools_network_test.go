//go:build linux

package mcpserver_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// TestNetworkTool: sandbox_network shows a sandbox's egress rules and adds
// to or replaces them (stored for its start here: the test server has no
// network path; the CLI's tests change a running sandbox's).
func TestNetworkTool(t *testing.T) {
	cs, mgr := connect(t)
	cfg, _, _ := sandbox.Resolve(sandbox.Options{Network: new(false)})
	cfg.Network = sandbox.NetworkNAT
	if _, err := mgr.Create(t.Context(), service.CreateRequest{Name: "net", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	defer mgr.Remove(t.Context(), "net")

	rulesOf := func(args map[string]any) netpolicy.Rules {
		t.Helper()
		res := call(t, cs, "sandbox_network", args)
		if res.IsError {
			t.Fatalf("sandbox_network %v: %v", args, res.Content)
		}
		var r netpolicy.Rules
		raw, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := rulesOf(map[string]any{"name": "net"}); !r.IsZero() {
		t.Fatalf("new sandbox: %+v", r)
	}
	rulesOf(map[string]any{"name": "net", "allow_domains": []string{"api.github.com"}, "allowlist_only": true})
	r := rulesOf(map[string]any{"name": "net", "allow_domains": []string{"*.pypi.org"}})
	if !r.AllowlistOnly || !slices.Equal(r.AllowDomains, []string{"api.github.com", "*.pypi.org"}) {
		t.Fatalf("after two calls: %+v", r)
	}
	if r := rulesOf(map[string]any{"name": "net", "replace": true, "deny_domains": []string{"evil.test"}}); r.AllowlistOnly || len(r.AllowDomains) != 0 || r.DenyDomains[0] != "evil.test" {
		t.Fatalf("replaced: %+v", r)
	}
	fails(t, cs, "sandbox_network", map[string]any{"name": "net", "allow_cidrs": []string{"nonsense"}}, "CIDR")
	fails(t, cs, "sandbox_network", map[string]any{"name": "nope"}, "not found")
}
