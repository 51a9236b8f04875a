//go:build linux

package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// TestExtendTTL calls the route as the SDK's extendTtl does: POST
// /sandboxes/{name}/extend {"by": …}, data {"expires_at": …}.
func TestExtendTTL(t *testing.T) {
	a := newAPI(t, withKeys("k"))
	cfg, _, _ := sandbox.Resolve(sandbox.Options{})
	if _, err := a.mgr.Create(t.Context(), service.CreateRequest{Name: "ttl-box", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	defer a.mgr.Remove(t.Context(), "ttl-box")

	expiry := func(r *reply) time.Time {
		t.Helper()
		var out struct {
			ExpiresAt string `json:"expires_at"`
		}
		r.data(&out)
		at, err := time.Parse(time.RFC3339Nano, out.ExpiresAt)
		if err != nil {
			t.Fatalf("expires_at %q: %v", out.ExpiresAt, err)
		}
		return at
	}
	before := time.Now()
	first := expiry(a.do("POST", "/sandboxes/ttl-box/extend", map[string]string{"by": "1h"}).expect(t, 200, "extend by 1h"))
	if first.Before(before.Add(time.Hour)) || first.After(time.Now().Add(time.Hour)) {
		t.Fatalf("expiry %s, want an hour after %s", first, before)
	}
	second := expiry(a.do("POST", "/sandboxes/ttl-box/extend", map[string]string{"by": "2d"}).expect(t, 200, "extend by 2d"))
	if !second.Equal(first.Add(48 * time.Hour)) {
		t.Fatalf("expiry %s, want %s", second, first.Add(48*time.Hour))
	}
	var info struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	a.do("GET", "/sandboxes/ttl-box", nil).expect(t, 200, "get").data(&info)
	if !info.ExpiresAt.Equal(second) {
		t.Fatalf("sandbox expires_at %s, want %s", info.ExpiresAt, second)
	}

	for _, body := range []string{`{}`, `{"by": ""}`, `{"by": "soon"}`, `{"by": "-1h"}`, `{"by": "0s"}`, `{"by": "31d"}`, `{"by": 3600}`, ``} {
		a.do("POST", "/sandboxes/ttl-box/extend", body).expect(t, 400, "extend "+body)
	}
	a.do("POST", "/sandboxes/no-such-box/extend", `{"by": "1h"}`).expect(t, 404, "unknown sandbox")
	req, _ := http.NewRequest("POST", a.url+"/sandboxes/ttl-box/extend", nil)
	a.send(req).expect(t, 401, "no key")
	if got := expiry(a.do("POST", "/sandboxes/ttl-box/extend", `{"by": "1m"}`).expect(t, 200, "extend by 1m")); !got.Equal(second.Add(time.Minute)) {
		t.Fatalf("after failed extends: %s, want %s", got, second.Add(time.Minute))
	}
}
