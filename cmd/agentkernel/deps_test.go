package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCLIStaysLean keeps the server's libraries out of the CLI: every
// package linked in runs its initialisation on every command, `run`'s hot
// path included (metrics, MCP and WebSocket cost ≈2 ms of start-up; they
// live in agentkernel-server), and so does the registry client (its
// dependencies cost ≈0.7 ms of start-up; pulls run in agentkernel-server
// through package fetchcmd).
func TestCLIStaysLean(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v\n%s", err, out)
	}
	for _, banned := range []string{
		"github.com/prometheus/", "github.com/modelcontextprotocol/", "github.com/coder/websocket",
		"github.com/agentkernel-go/agentkernel/internal/server",
		"github.com/google/go-containerregistry", "github.com/opencontainers/go-digest",
		"github.com/klauspost/compress", "github.com/agentkernel-go/agentkernel/internal/image/ingest",
		"gvisor.dev/gvisor", "github.com/agentkernel-go/agentkernel/internal/netstack",
	} {
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("the CLI links %s", dep)
			}
		}
	}
}
