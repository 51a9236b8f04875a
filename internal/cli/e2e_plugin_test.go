package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

func TestE2EPluginInstall(t *testing.T) {
	e := newE2E(t)
	e.dir = t.TempDir()
	e.env = append(e.env, "HOME="+t.TempDir())
	if out := e.ok("plugin", "install", "gemini", "--dry-run"); !strings.Contains(out, "would write") {
		t.Fatalf("dry run: %q", out)
	}
	if _, err := os.Stat(filepath.Join(e.dir, ".gemini")); !os.IsNotExist(err) {
		t.Fatal("--dry-run wrote something")
	}
	if out := e.ok("plugin", "install", "all"); strings.Count(out, "created") != 4 || !strings.Contains(out, "up to date") {
		t.Fatalf("install all: %q", out) // claude and mcp share .mcp.json
	}
	if out := e.ok("plugin", "install", "all"); strings.Count(out, "up to date") != 5 {
		t.Fatalf("second install all: %q", out)
	}
	b, err := os.ReadFile(filepath.Join(e.dir, ".codex", "config.toml"))
	if err != nil || !strings.Contains(string(b), `args = ["mcp-server"]`) {
		t.Fatalf("codex config: %s %v", b, err)
	}
	if out := e.ok("plugin", "list"); strings.Count(out, "installed") != 5 {
		t.Fatalf("list: %q", out)
	}
	e.fails(errdefs.ExitUsage, "unknown plugin target", "plugin", "install", "vim")
}
