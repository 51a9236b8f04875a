//go:build linux

package httpapi_test

import (
	"slices"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// TestNetworkRules: GET shows a sandbox's egress rules, PUT replaces and
// POST adds to them (stored for its start; a running sandbox's network
// daemon gets them at once, which the CLI's network tests show).
func TestNetworkRules(t *testing.T) {
	a := newAPI(t)
	cfg, _, _ := sandbox.Resolve(sandbox.Options{Network: new(false)})
	if _, err := a.mgr.Create(t.Context(), service.CreateRequest{Name: "no-net", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	defer a.mgr.Remove(t.Context(), "no-net")
	cfg.Network = sandbox.NetworkNAT
	if _, err := a.mgr.Create(t.Context(), service.CreateRequest{Name: "net", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	defer a.mgr.Remove(t.Context(), "net")

	var rules netpolicy.Rules
	a.do("GET", "/sandboxes/net/network", nil).expect(t, 200, "get").data(&rules)
	if !rules.IsZero() {
		t.Fatalf("new sandbox's rules: %+v", rules)
	}
	a.do("PUT", "/sandboxes/net/network", netpolicy.Rules{AllowlistOnly: true, AllowDomains: []string{"api.github.com"}}).expect(t, 200, "put").data(&rules)
	a.do("POST", "/sandboxes/net/network", netpolicy.Rules{AllowDomains: []string{"*.pypi.org"}, DenyCIDRs: []string{"10.0.0.0/8"}}).expect(t, 200, "post").data(&rules)
	if !rules.AllowlistOnly || !slices.Equal(rules.AllowDomains, []string{"api.github.com", "*.pypi.org"}) || len(rules.DenyCIDRs) != 1 {
		t.Fatalf("after PUT and POST: %+v", rules)
	}
	a.do("GET", "/sandboxes/net/network", nil).expect(t, 200, "get again").data(&rules)
	if len(rules.AllowDomains) != 2 {
		t.Fatalf("stored: %+v", rules)
	}
	a.do("PUT", "/sandboxes/net/network", netpolicy.Rules{AllowDomains: []string{"not a name"}}).expect(t, 400, "a bad rule")
	a.do("PUT", "/sandboxes/no-net/network", netpolicy.Rules{}).expect(t, 409, "a sandbox without network")
	a.do("GET", "/sandboxes/nobody/network", nil).expect(t, 404, "no such sandbox")
}

// TestCreateWithNetworkFields: create and run take network options; this
// test server has no network path, so asking for network is a clear 503,
// and contradictions are 400s.
func TestCreateWithNetworkFields(t *testing.T) {
	a := newAPI(t)
	rules := map[string]any{"allow_domains": []string{"api.github.com"}, "allowlist_only": true}
	a.do("POST", "/sandboxes", map[string]any{"name": "n1", "egress": rules}).expect(t, 503, "egress without a network path")
	a.do("POST", "/run", map[string]any{"command": []string{"true"}, "network_preset": "claude"}).expect(t, 503, "a preset without a network path")
	a.do("POST", "/sandboxes", map[string]any{"name": "n2", "network": false, "ports": []string{"8080"}}).expect(t, 400, "ports with network off")
	a.do("POST", "/sandboxes", map[string]any{"name": "n3", "ports": []string{"http"}}).expect(t, 400, "a bad port")
	a.do("POST", "/run", map[string]any{"command": []string{"true"}, "network_preset": "nobody"}).expect(t, 400, "an unknown preset")
	if infos, _ := a.mgr.List(t.Context()); len(infos) != 0 {
		t.Errorf("refused requests left sandboxes: %v", infos)
	}
}
