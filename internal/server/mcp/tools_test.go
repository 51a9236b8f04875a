package mcpserver_test

import (
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	mcpserver "github.com/agentkernel-go/agentkernel/internal/server/mcp"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

type execOutput struct {
	ExitCode int    `json:"exit_code"`
	Output   string `json:"output"`
	TimedOut bool   `json:"timed_out"`
}

func TestRun(t *testing.T) {
	testutil.RequireRoot(t)
	cs, _ := connect(t)
	res := call(t, cs, "sandbox_run", map[string]any{"command": []string{"echo", "hello"}})
	var out execOutput
	structured(t, res, &out)
	if res.IsError || text(res) != "hello\n" || out.ExitCode != 0 || out.Output != "hello\n" {
		t.Fatalf("run echo: %v %q %+v", res.IsError, text(res), out)
	}
	// Options reach the command.
	got := ok(t, cs, "sandbox_run", map[string]any{
		"command": []string{"sh", "-c", "echo $GREETING; pwd"}, "env": map[string]string{"GREETING": "hi"}, "cwd": "/tmp",
	})
	if got != "hi\n/tmp\n" {
		t.Errorf("env and cwd: %q", got)
	}
	// A non-zero exit reports the output and the exit code.
	res = call(t, cs, "sandbox_run", map[string]any{"command": []string{"sh", "-c", "echo out; echo err >&2; exit 3"}})
	structured(t, res, &out)
	// stdout and stderr are separate streams: their lines may come in either order.
	if got := text(res); !res.IsError || (got != "out\nerr\n[exit code 3]" && got != "err\nout\n[exit code 3]") || out.ExitCode != 3 {
		t.Errorf("exit 3: %v %q %+v", res.IsError, text(res), out)
	}
	fails(t, cs, "sandbox_run", map[string]any{"command": []string{"no-such-command"}}, "not found")
	res = call(t, cs, "sandbox_run", map[string]any{"command": []string{"sleep", "10"}, "timeout_ms": 300})
	structured(t, res, &out)
	if !res.IsError || !out.TimedOut || !strings.Contains(text(res), "timed out after 300 ms") {
		t.Errorf("timeout: %v %q %+v", res.IsError, text(res), out)
	}
}

// Long output keeps its head and tail with a marker.
func TestRunTruncates(t *testing.T) {
	testutil.RequireRoot(t)
	cs, _ := connect(t)
	got := ok(t, cs, "sandbox_run", map[string]any{
		"command": []string{"sh", "-c", "echo START; head -c 100000 /dev/zero | tr '\\0' a; echo; echo END"},
	})
	// START\n (6) + 100000 + \n + END\n = 100011 bytes, 16000 kept.
	if !strings.HasPrefix(got, "START\naaa") || !strings.HasSuffix(got, "aaa\nEND\n") ||
		!strings.Contains(got, "\n\n... [84011 bytes truncated] ...\n\n") || len(got) > mcpserver.MaxOutput+64 {
		t.Fatalf("truncated output: %d bytes, head %q, tail %q", len(got), got[:min(len(got), 20)], got[max(0, len(got)-20):])
	}
}

func TestSandboxLifecycle(t *testing.T) {
	testutil.RequireRoot(t)
	cs, mgr := connect(t)
	got := ok(t, cs, "sandbox_create", map[string]any{"name": "box", "env": []string{"FROM_CREATE=1"}})
	if !strings.Contains(got, "Sandbox 'box' created and started") {
		t.Errorf("create: %q", got)
	}
	fails(t, cs, "sandbox_create", map[string]any{"name": "box"}, "already exists")
	if got := ok(t, cs, "sandbox_exec", map[string]any{"name": "box", "command": []string{"sh", "-c", "echo $FROM_CREATE $X; id -u"}, "env": []string{"X=2"}}); got != "1 2\n0\n" {
		t.Errorf("exec: %q", got)
	}
	fails(t, cs, "sandbox_exec", map[string]any{"name": "box", "command": []string{"false"}}, "[exit code 1]")
	if got := ok(t, cs, "sandbox_list", nil); !strings.Contains(got, "box\trunning") {
		t.Errorf("list: %q", got)
	}
	if got := ok(t, cs, "sandbox_start", map[string]any{"name": "box"}); got != "Sandbox 'box' is already running." {
		t.Errorf("start running: %q", got)
	}
	if got := ok(t, cs, "sandbox_stop", map[string]any{"name": "box"}); got != "Sandbox 'box' stopped." {
		t.Errorf("stop: %q", got)
	}
	fails(t, cs, "sandbox_exec", map[string]any{"name": "box", "command": []string{"true"}}, "stopped")
	if got := ok(t, cs, "sandbox_stop", map[string]any{"name": "box"}); got != "Sandbox 'box' is already stopped." {
		t.Errorf("stop stopped: %q", got)
	}
	ok(t, cs, "sandbox_start", map[string]any{"name": "box"})
	ok(t, cs, "sandbox_exec", map[string]any{"name": "box", "command": []string{"true"}})
	ok(t, cs, "sandbox_extend_ttl", map[string]any{"name": "box"})
	if got := ok(t, cs, "sandbox_remove", map[string]any{"name": "box"}); got != "Sandbox 'box' removed." {
		t.Errorf("remove: %q", got)
	}
	if list, _ := mgr.List(t.Context()); len(list) != 0 {
		t.Errorf("left after remove: %v", list)
	}
}

func TestFiles(t *testing.T) {
	testutil.RequireRoot(t)
	cs, _ := connect(t)
	ok(t, cs, "sandbox_create", map[string]any{"name": "files"})
	defer ok(t, cs, "sandbox_remove", map[string]any{"name": "files"})

	content := "hello files\nsecond line ü\n"
	if got := ok(t, cs, "sandbox_file_write", map[string]any{"name": "files", "path": "/work/a.txt", "content": content}); got != "Wrote 27 bytes to '/work/a.txt' in sandbox 'files'" {
		t.Errorf("write: %q", got)
	}
	if got := ok(t, cs, "sandbox_file_read", map[string]any{"name": "files", "path": "/work/a.txt"}); got != content {
		t.Errorf("read back %q", got)
	}
	if got := ok(t, cs, "sandbox_exec", map[string]any{"name": "files", "command": []string{"cat", "/work/a.txt"}}); got != content {
		t.Errorf("cat: %q", got)
	}
	if got := ok(t, cs, "sandbox_write_files", map[string]any{"name": "files", "files": map[string]string{"/w/one": "1", "/w/sub/two": "2"}}); got != "Wrote 2 file(s) to sandbox 'files'" {
		t.Errorf("write_files: %q", got)
	}
	if got := ok(t, cs, "sandbox_exec", map[string]any{"name": "files", "command": []string{"sh", "-c", "cat /w/one /w/sub/two"}}); got != "12" {
		t.Errorf("written files: %q", got)
	}
	// Binary content goes both ways as base64.
	bin := []byte{0, 1, 2, 0xff, 0xfe, 'x'}
	ok(t, cs, "sandbox_file_write", map[string]any{"name": "files", "path": "/work/bin", "content": base64.StdEncoding.EncodeToString(bin), "encoding": "base64"})
	res := call(t, cs, "sandbox_file_read", map[string]any{"name": "files", "path": "/work/bin"})
	var out struct{ Content, Encoding string }
	structured(t, res, &out)
	if want := "[binary file, 6 bytes, base64 encoded]\n" + base64.StdEncoding.EncodeToString(bin); text(res) != want || out.Encoding != "base64" {
		t.Errorf("binary read: %q %+v", text(res), out)
	}
	// A long file is cut like command output.
	ok(t, cs, "sandbox_exec", map[string]any{"name": "files", "command": []string{"sh", "-c", "seq 1 20000 > /work/long"}})
	if got := ok(t, cs, "sandbox_file_read", map[string]any{"name": "files", "path": "/work/long"}); !strings.HasPrefix(got, "1\n2\n") ||
		!strings.HasSuffix(got, "19999\n20000\n") || !strings.Contains(got, "bytes truncated") {
		t.Errorf("long read: %d bytes", len(got))
	}
	fails(t, cs, "sandbox_file_read", map[string]any{"name": "files", "path": "/work/missing"}, "")
	fails(t, cs, "sandbox_file_read", map[string]any{"name": "files", "path": "../../etc/shadow"}, "")
	fails(t, cs, "sandbox_file_write", map[string]any{"name": "files", "path": "relative", "content": "x"}, "")
}

type command struct {
	ID       string `json:"id"`
	Sandbox  string `json:"sandbox"`
	PID      int    `json:"pid"`
	Status   string `json:"status"`
	ExitCode *int   `json:"exit_code"`
}

func TestDetached(t *testing.T) {
	testutil.RequireRoot(t)
	cs, _ := connect(t)
	ok(t, cs, "sandbox_create", map[string]any{"name": "bg"})
	defer ok(t, cs, "sandbox_remove", map[string]any{"name": "bg"})

	res := call(t, cs, "sandbox_exec_detach", map[string]any{"name": "bg", "command": []string{"sh", "-c", "echo started; echo oops >&2; exec sleep 60"}})
	var c command
	structured(t, res, &c)
	if res.IsError || c.Status != "running" || c.Sandbox != "bg" || !strings.HasPrefix(c.ID, "bg:") || c.PID == 0 {
		t.Fatalf("detach: %q %+v", text(res), c)
	}
	status := func(args map[string]any) command {
		t.Helper()
		var c command
		structured(t, call(t, cs, "sandbox_exec_status", args), &c)
		return c
	}
	if got := status(map[string]any{"id": c.ID}); got.Status != "running" {
		t.Errorf("status: %+v", got)
	}
	bare := strings.TrimPrefix(c.ID, "bg:")
	if got := status(map[string]any{"id": bare}); got.ID != c.ID { // found by its ID alone
		t.Errorf("status by bare ID: %+v", got)
	}
	if got := status(map[string]any{"id": bare, "name": "bg"}); got.ID != c.ID {
		t.Errorf("status by name and ID: %+v", got)
	}
	waitFor(t, "stdout", func() bool { return ok(t, cs, "sandbox_exec_logs", map[string]any{"id": c.ID}) == "started\n" })
	waitFor(t, "stderr", func() bool {
		return ok(t, cs, "sandbox_exec_logs", map[string]any{"id": c.ID, "stream": "stderr"}) == "oops\n"
	})
	if got := ok(t, cs, "sandbox_exec_list", map[string]any{"name": "bg"}); !strings.Contains(got, c.ID) {
		t.Errorf("list: %q", got)
	}
	if got := ok(t, cs, "sandbox_exec_list", nil); !strings.Contains(got, c.ID) {
		t.Errorf("list of all: %q", got)
	}
	if got := ok(t, cs, "sandbox_exec_kill", map[string]any{"id": c.ID}); got != fmt.Sprintf("Command %s killed.", c.ID) {
		t.Errorf("kill: %q", got)
	}
	var done command
	waitFor(t, "the command to end", func() bool { done = status(map[string]any{"id": c.ID}); return done.Status != "running" })
	if done.Status != "failed" || done.ExitCode == nil || *done.ExitCode != 137 {
		t.Errorf("killed: %+v", done)
	}
	// A command that completes.
	structured(t, call(t, cs, "sandbox_exec_detach", map[string]any{"name": "bg", "command": []string{"true"}}), &c)
	waitFor(t, "true to complete", func() bool { done = status(map[string]any{"id": c.ID}); return done.Status == "completed" })
	fails(t, cs, "sandbox_exec_status", map[string]any{"id": "bg:000000000000"}, "not found")
	fails(t, cs, "sandbox_exec_status", map[string]any{"id": c.ID, "name": "other"}, "belongs to sandbox")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The same tools over MCP's streamable HTTP transport.
func TestHTTP(t *testing.T) {
	testutil.RequireRoot(t)
	mgr, opts := newManager(t)
	srv := httptest.NewServer(mcpserver.HTTPHandler(mgr, opts))
	defer srv.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).
		Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: srv.URL, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(t.Context(), nil)
	if err != nil || len(tools.Tools) != len(toolArgs) {
		t.Fatalf("list tools: %d %v", len(tools.Tools), err)
	}
	if got := ok(t, cs, "sandbox_run", map[string]any{"command": []string{"echo", "over http"}}); got != "over http\n" {
		t.Errorf("run: %q", got)
	}
	fails(t, cs, "sandbox_exec", map[string]any{"name": "nope", "command": []string{"true"}}, "not found")
}
