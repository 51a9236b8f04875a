//go:build linux

package httpapi_test

import (
	"slices"
	"testing"
)

// TestSandboxLogs calls the route as the SDK's getSandboxLogs does: GET
// /sandboxes/{name}/logs, data an array of audit entries.
func TestSandboxLogs(t *testing.T) {
	a := newAPI(t, withKeys("k"))
	a.do("POST", "/sandboxes", `{"name": "aud"}`).expect(t, 201, "create")
	defer a.mgr.Remove(t.Context(), "aud")
	a.do("POST", "/sandboxes/aud/exec", `{"command": ["echo", "hi"]}`).expect(t, 200, "exec")
	a.do("PUT", "/sandboxes/aud/files/tmp/a.txt", `{"content": "secret"}`).expect(t, 200, "write")
	a.do("POST", "/sandboxes/aud/stop", nil).expect(t, 200, "stop")

	var entries []map[string]any
	a.do("GET", "/sandboxes/aud/logs", nil).expect(t, 200, "logs").data(&entries)
	var types []string
	for _, e := range entries {
		types = append(types, e["type"].(string))
		if e["timestamp"] == nil || e["content"] != nil {
			t.Errorf("entry %v", e)
		}
	}
	want := []string{"sandbox_created", "sandbox_started", "command_executed", "file_written", "sandbox_stopped"}
	if !slices.Equal(types, want) {
		t.Fatalf("types %v, want %v", types, want)
	}
	x := entries[2]
	if x["sandbox"] != "aud" || x["exit_code"] != 0.0 || x["via"] != "api" || !slices.Equal(x["command"].([]any), []any{"echo", "hi"}) {
		t.Errorf("exec entry %v", x)
	}
	if entries[3]["path"] != "/tmp/a.txt" {
		t.Errorf("write entry %v", entries[3])
	}

	entries = nil
	a.do("GET", "/sandboxes/aud/logs?limit=1", nil).expect(t, 200, "logs limit").data(&entries)
	if len(entries) != 1 || entries[0]["type"] != "sandbox_stopped" {
		t.Fatalf("limit 1: %v", entries)
	}
	a.do("GET", "/sandboxes/aud/logs?limit=x", nil).expect(t, 400, "bad limit")
	a.do("GET", "/sandboxes/no-such-box/logs", nil).expect(t, 404, "unknown sandbox")
	a.key = ""
	a.do("GET", "/sandboxes/aud/logs", nil).expect(t, 401, "no key")
	a.key = "k"
	a.do("DELETE", "/sandboxes/aud", nil).expect(t, 200, "remove")
	a.do("GET", "/sandboxes/aud/logs", nil).expect(t, 404, "removed sandbox")
}
