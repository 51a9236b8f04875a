package server_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentkernel-go/agentkernel/internal/image/ingest"
	"github.com/agentkernel-go/agentkernel/internal/setup"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// agentkernel-server mcp over stdio, driven by the go-sdk client as an
// agent would: initialize, list tools, run commands, close.
func TestMCPStdio(t *testing.T) {
	testutil.RequireRoot(t)
	server := testutil.BuildBinary(t, "agentkernel-server")
	agent := testutil.BuildBinary(t, "agentkernel-agent")
	root := t.TempDir()
	before := testutil.Snapshot()
	defer testutil.CheckNoLeaks(t, before)
	defer drain(t, root, agent) // the warm pool outlives the server, as it outlives the CLI

	var stderr bytes.Buffer
	cmd := exec.Command(server, "--root", root, "mcp", "--log-level", "debug")
	cmd.Env = append(os.Environ(), "AGENTKERNEL_AGENT="+agent, noNetwork)
	cmd.Stderr = &stderr
	defer func() {
		if t.Failed() || os.Getenv("MCP_TEST_LOG") != "" {
			t.Logf("server stderr:\n%s", stderr.String())
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).
		Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info := cs.InitializeResult().ServerInfo; info.Name != "agentkernel" {
		t.Errorf("server info %+v", info)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) < 20 {
		t.Fatalf("list tools: %v", err)
	}
	// Twice: the second run may take the sandbox the server warmed up meanwhile.
	for i := range 2 {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "sandbox_run", Arguments: map[string]any{"command": []string{"echo", "hello"}}})
		if err != nil || res.IsError || len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != "hello\n" {
			t.Fatalf("run %d: %v %+v", i, err, res)
		}
	}
	mcpSandboxSession(t, ctx, cs, "mcp-stdio")
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "sandbox_exec", Arguments: map[string]any{"name": "nope", "command": []string{"true"}}})
	if err != nil || !res.IsError {
		t.Fatalf("exec in an unknown sandbox: %v %+v", err, res)
	}
	// Closing the client closes the server's stdin: it exits by itself, cleanly.
	start := time.Now()
	if err := cs.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if !cmd.ProcessState.Success() || time.Since(start) > 30*time.Second {
		t.Errorf("server exit: %v after %v", cmd.ProcessState, time.Since(start))
	}
	if strings.Contains(stderr.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", stderr.String())
	}
}

// drain removes what the server's warm pool left under root and checks
// that no sandbox remains.
func drain(t *testing.T, root, agent string) {
	t.Helper()
	ctx := context.Background()
	mgr, _, err := setup.Manager(ctx, setup.Config{Fetcher: ingest.New, Root: root, Getenv: func(k string) string {
		if k == "AGENTKERNEL_AGENT" {
			return agent
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	if _, err := mgr.DrainPool(ctx); err != nil {
		t.Error(err)
	}
	if _, err := mgr.GC(ctx); err != nil {
		t.Error(err)
	}
	if list, err := mgr.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("sandboxes left: %+v %v", list, err)
	}
}

// SIGTERM ends the server cleanly too; bad flags are a usage error.
func TestMCPStdioSignalAndFlags(t *testing.T) {
	server := testutil.BuildBinary(t, "agentkernel-server")
	root := t.TempDir()
	if out, err := exec.Command(server, "--root", root, "mcp", "--log-level", "loud").CombinedOutput(); err == nil ||
		err.(*exec.ExitError).ExitCode() != 2 || !strings.Contains(string(out), "unknown log level") {
		t.Errorf("bad log level: %v %s", err, out)
	}
	cmd := exec.Command(server, "--root", root, "mcp")
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).
		Connect(t.Context(), &mcp.CommandTransport{Command: cmd, TerminateDuration: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.ListTools(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	cs.Wait() // the server hung up
	cs.Close()
	if !cmd.ProcessState.Success() {
		t.Errorf("server exit after SIGTERM: %v", cmd.ProcessState)
	}
}
