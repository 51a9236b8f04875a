package mcpserver_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentkernel-go/agentkernel/internal/backend/native"
	"github.com/agentkernel-go/agentkernel/internal/image/ingest"
	mcpserver "github.com/agentkernel-go/agentkernel/internal/server/mcp"
	"github.com/agentkernel-go/agentkernel/internal/service"
	"github.com/agentkernel-go/agentkernel/internal/setup"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

func TestMain(m *testing.M) {
	native.MaybeInit() // sandboxes started by these tests re-execute the test binary
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

// newManager returns a manager over a private data root (no warm pool)
// and checks, when the test ends, that it holds no sandbox and that
// nothing leaked on the host.
func newManager(t *testing.T) (*service.Manager, mcpserver.Options) {
	t.Helper()
	env := map[string]string{"AGENTKERNEL_POOL": "0"}
	if os.Geteuid() == 0 {
		env["AGENTKERNEL_AGENT"] = testutil.BuildBinary(t, "agentkernel-agent")
		env["AGENTKERNEL_SERVER"] = "/nonexistent/agentkernel-server" // no network path, no daemon
	}
	before := testutil.Snapshot()
	t.Cleanup(func() { testutil.CheckNoLeaks(t, before) })
	mgr, agentErr, err := setup.Manager(context.Background(), setup.Config{Fetcher: ingest.New,
		Root: t.TempDir(), Getenv: func(k string) string { return env[k] },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		list, err := mgr.List(context.Background())
		if err != nil || len(list) != 0 {
			t.Errorf("sandboxes left: %v %v", list, err)
			for _, s := range list {
				mgr.Remove(context.Background(), s.Name)
			}
		}
		mgr.Close()
	})
	return mgr, mcpserver.Options{AgentErr: agentErr}
}

// connect serves mgr's tools in-process and returns a connected client.
func connect(t *testing.T) (*mcp.ClientSession, *service.Manager) {
	t.Helper()
	mgr, opts := newManager(t)
	ct, st := mcp.NewInMemoryTransports()
	ss, err := mcpserver.New(mgr, opts).Connect(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs, mgr
}

// call calls a tool; a protocol error fails the test (tools report
// failures as results).
func call(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", tool, err)
	}
	return res
}

// ok calls a tool that must succeed and returns its text.
func ok(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) string {
	t.Helper()
	res := call(t, cs, tool, args)
	if res.IsError {
		t.Fatalf("%s %v: error result: %s", tool, args, text(res))
	}
	return text(res)
}

// fails calls a tool that must fail and returns its text.
func fails(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any, want string) string {
	t.Helper()
	res := call(t, cs, tool, args)
	if !res.IsError {
		t.Fatalf("%s %v: succeeded: %s", tool, args, text(res))
	}
	if !strings.Contains(text(res), want) {
		t.Fatalf("%s %v: error %q does not say %q", tool, args, text(res), want)
	}
	return text(res)
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// structured decodes a result's structured content into v.
func structured(t *testing.T, res *mcp.CallToolResult, v any) {
	t.Helper()
	raw, err := json.Marshal(res.StructuredContent)
	if err == nil {
		err = json.Unmarshal(raw, v)
	}
	if err != nil {
		t.Fatalf("structured content %s: %v", raw, err)
	}
}

// toolArgs are the arguments each tool must take, as agentkernel names them.
var toolArgs = map[string][]string{
	"sandbox_run":         {"command", "image", "fast", "cwd", "env", "timeout_ms", "profile", "network", "compatibility_mode", "ports"},
	"sandbox_create":      {"name", "image", "ports", "source_url", "source_ref"},
	"sandbox_exec":        {"name", "command", "env", "workdir", "sudo"},
	"sandbox_list":        {},
	"sandbox_remove":      {"name"},
	"sandbox_start":       {"name"},
	"sandbox_stop":        {"name"},
	"sandbox_file_read":   {"name", "path"},
	"sandbox_file_write":  {"name", "path", "content"},
	"sandbox_write_files": {"name", "files"},
	"sandbox_exec_detach": {"name", "command", "env", "workdir", "sudo"},
	"sandbox_exec_status": {"id"},
	"sandbox_exec_logs":   {"id", "stream"},
	"sandbox_exec_kill":   {"id"},
	"sandbox_exec_list":   {"name"},
	"sandbox_extend_ttl":  {"name", "by"},
	"sandbox_network":     {"name", "allow_domains", "deny_domains", "allowlist_only", "allow_cidrs", "deny_cidrs", "allow_ports", "deny_ports", "replace"},
	"snapshot_list":       {},
	"snapshot_take":       {"sandbox", "name"},
	"snapshot_get":        {"name"},
	"snapshot_delete":     {"name"},
	"snapshot_restore":    {"name", "as_name"},
}

// toolRequired are the arguments agentkernel requires.
var toolRequired = map[string][]string{
	"sandbox_run": {"command"}, "sandbox_exec": {"command", "name"}, "sandbox_file_write": {"content", "name", "path"},
	"sandbox_exec_status": {"id"}, "snapshot_take": {"name", "sandbox"}, "sandbox_write_files": {"files", "name"},
	"sandbox_network": {"name"},
}

func TestInitializeAndListTools(t *testing.T) {
	cs, _ := connect(t)
	if info := cs.InitializeResult().ServerInfo; info.Name != "agentkernel" || info.Version == "" {
		t.Fatalf("server info %+v", info)
	}
	res, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*mcp.Tool{}
	for _, tool := range res.Tools {
		got[tool.Name] = tool
	}
	for name, args := range toolArgs {
		tool, found := got[name]
		if !found {
			t.Errorf("tool %s missing", name)
			continue
		}
		if tool.Description == "" {
			t.Errorf("tool %s has no description", name)
		}
		var schema struct {
			Type       string                     `json:"type"`
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		}
		raw, _ := json.Marshal(tool.InputSchema)
		if err := json.Unmarshal(raw, &schema); err != nil || schema.Type != "object" {
			t.Errorf("tool %s: input schema %s", name, raw)
			continue
		}
		for _, a := range args {
			if _, ok := schema.Properties[a]; !ok {
				t.Errorf("tool %s: no argument %s in %s", name, a, raw)
			}
		}
		for _, a := range toolRequired[name] {
			if !slices.Contains(schema.Required, a) {
				t.Errorf("tool %s: argument %s not required (%v)", name, a, schema.Required)
			}
		}
		for a, p := range schema.Properties {
			if !strings.Contains(string(p), `"description"`) {
				t.Errorf("tool %s: argument %s has no description", name, a)
			}
		}
	}
	if len(got) != len(toolArgs) {
		t.Errorf("%d tools, want %d", len(got), len(toolArgs))
	}
}

// Failures that need no sandbox are results, not protocol errors.
func TestErrorResults(t *testing.T) {
	cs, _ := connect(t)
	fails(t, cs, "sandbox_exec", map[string]any{"name": "nope", "command": []string{"true"}}, "not found")
	fails(t, cs, "sandbox_file_read", map[string]any{"name": "nope", "path": "/etc/hostname"}, "not found")
	fails(t, cs, "sandbox_remove", map[string]any{"name": "nope"}, "not found")
	fails(t, cs, "sandbox_start", map[string]any{"name": "nope"}, "not found")
	fails(t, cs, "sandbox_exec_status", map[string]any{"id": "nope:abc"}, "not found")
	fails(t, cs, "sandbox_exec_status", map[string]any{"id": "abc"}, "not found")
	fails(t, cs, "sandbox_extend_ttl", map[string]any{"name": "nope"}, "not found")
	fails(t, cs, "sandbox_extend_ttl", map[string]any{"name": "nope", "by": "soon"}, "want a positive duration")
	fails(t, cs, "sandbox_remove", map[string]any{"name": "../etc"}, "not allowed")
	fails(t, cs, "sandbox_create", map[string]any{"name": "bad name"}, "not allowed")
	fails(t, cs, "sandbox_create", map[string]any{"name": "x", "source_url": "https://example.com/r.git"}, "not yet supported")
	fails(t, cs, "sandbox_create", map[string]any{"name": "x", "ports": []string{"8080:80"}}, "network access")
	fails(t, cs, "sandbox_run", map[string]any{"command": []string{}}, "command")
	fails(t, cs, "sandbox_run", map[string]any{"image": "host"}, "command")
	fails(t, cs, "sandbox_run", map[string]any{"command": "echo"}, "command")
	fails(t, cs, "sandbox_run", map[string]any{"command": []string{"true"}, "profile": "reckless"}, "profile")
	fails(t, cs, "sandbox_run", map[string]any{"command": []string{"true"}, "compatibility_mode": "claude"}, "network access") // no network path in these tests
	fails(t, cs, "sandbox_run", map[string]any{"command": []string{"true"}, "env": map[string]string{"": "x"}}, "environment")
	fails(t, cs, "sandbox_write_files", map[string]any{"name": "nope", "files": map[string]string{}}, "files")
	fails(t, cs, "sandbox_write_files", map[string]any{"name": "nope", "files": map[string]string{"../x": "1"}}, "path")
	fails(t, cs, "sandbox_file_write", map[string]any{"name": "nope", "path": "/x", "content": "!", "encoding": "base64"}, "base64")
	fails(t, cs, "sandbox_exec_kill", map[string]any{"id": "nope:1", "signal": "BOGUS"}, "signal")
	for tool, args := range map[string]map[string]any{
		"snapshot_list":    {},
		"snapshot_take":    {"sandbox": "a", "name": "s"},
		"snapshot_get":     {"name": "s"},
		"snapshot_delete":  {"name": "s"},
		"snapshot_restore": {"name": "s", "as_name": "b"},
	} {
		fails(t, cs, tool, args, "snapshots are not yet supported")
	}
	if got := ok(t, cs, "sandbox_list", nil); got != "No sandboxes found." {
		t.Errorf("empty list: %q", got)
	}
	if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "no_such_tool"}); err == nil {
		t.Error("an unknown tool is not a protocol error")
	}
}
