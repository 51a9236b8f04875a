package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// mcpSandboxSession drives a sandbox through a connected MCP client, as an
// agent would: create, exec, a file round trip, an error result, remove.
func mcpSandboxSession(t *testing.T, ctx context.Context, cs *mcp.ClientSession, name string) {
	t.Helper()
	call := func(tool string, args map[string]any) (string, bool) {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil {
			t.Fatalf("%s: protocol error: %v", tool, err)
		}
		var sb strings.Builder
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				sb.WriteString(tc.Text)
			}
		}
		return sb.String(), res.IsError
	}
	must := func(tool string, args map[string]any) string {
		t.Helper()
		out, isErr := call(tool, args)
		if isErr {
			t.Fatalf("%s: error result: %s", tool, out)
		}
		return out
	}
	must("sandbox_create", map[string]any{"name": name})
	removed := false
	defer func() {
		if !removed {
			call("sandbox_remove", map[string]any{"name": name})
		}
	}()
	if out := must("sandbox_exec", map[string]any{"name": name, "command": []string{"sh", "-c", "echo $((6*7))"}}); out != "42\n" {
		t.Fatalf("exec: %q", out)
	}
	must("sandbox_file_write", map[string]any{"name": name, "path": "/tmp/note.txt", "content": "round trip"})
	if out := must("sandbox_file_read", map[string]any{"name": name, "path": "/tmp/note.txt"}); out != "round trip" {
		t.Fatalf("file read: %q", out)
	}
	if out, isErr := call("sandbox_file_read", map[string]any{"name": name, "path": "/tmp/missing"}); !isErr || !strings.Contains(out, "Error") {
		t.Fatalf("reading a missing file: %v %q", isErr, out)
	}
	if out := must("sandbox_list", nil); !strings.Contains(out, name) {
		t.Fatalf("list: %q", out)
	}
	must("sandbox_remove", map[string]any{"name": name})
	removed = true
	if _, isErr := call("sandbox_exec", map[string]any{"name": name, "command": []string{"true"}}); !isErr {
		t.Fatal("exec in a removed sandbox succeeded")
	}
}
