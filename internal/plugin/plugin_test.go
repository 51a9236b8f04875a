package plugin

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

func opts(t *testing.T) Options {
	return Options{Dir: t.TempDir(), Home: t.TempDir(), Command: "/usr/local/bin/agentkernel"}
}

func install(t *testing.T, name string, o Options) Result {
	t.Helper()
	ts, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Install(ts[0], o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestInstallCreatesThenIsIdempotent(t *testing.T) {
	for _, tg := range Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			o := opts(t)
			if Installed(tg, o) {
				t.Fatal("installed before install")
			}
			if r := install(t, tg.Name, o); r.Action != "created" {
				t.Fatalf("first install: %+v", r)
			}
			if !Installed(tg, o) {
				t.Fatal("not installed after install")
			}
			first, _ := os.ReadFile(tg.Path(o))
			if r := install(t, tg.Name, o); r.Action != "up to date" {
				t.Fatalf("second install: %+v", r)
			}
			again, _ := os.ReadFile(tg.Path(o))
			if string(first) != string(again) {
				t.Fatal("a second install changed the file")
			}
		})
	}
}

func TestInstallMergesKeepingOtherServers(t *testing.T) {
	o := opts(t)
	path := filepath.Join(o.Dir, ".gemini", "settings.json")
	os.MkdirAll(filepath.Dir(path), 0o755)
	os.WriteFile(path, []byte(`{"theme":"dark","mcpServers":{"other":{"command":"x"}}}`), 0o600)
	if r := install(t, "gemini", o); r.Action != "merged" {
		t.Fatalf("%+v", r)
	}
	var doc struct {
		Theme      string                    `json:"theme"`
		MCPServers map[string]map[string]any `json:"mcpServers"`
	}
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Theme != "dark" || doc.MCPServers["other"]["command"] != "x" ||
		doc.MCPServers["agentkernel"]["command"] != "/usr/local/bin/agentkernel" {
		t.Fatalf("merged: %s", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode changed to %v", fi.Mode())
	}
}

func TestInstallKeepsADifferentEntryUnlessForced(t *testing.T) {
	o := opts(t)
	install(t, "mcp", o)
	o.Command = "/opt/agentkernel"
	if r := install(t, "mcp", o); r.Action != "differs" {
		t.Fatalf("%+v", r)
	}
	b, _ := os.ReadFile(filepath.Join(o.Dir, ".mcp.json"))
	if strings.Contains(string(b), "/opt/agentkernel") {
		t.Fatal("replaced without --force")
	}
	o.Force = true
	if r := install(t, "mcp", o); r.Action != "merged" {
		t.Fatalf("%+v", r)
	}
	b, _ = os.ReadFile(filepath.Join(o.Dir, ".mcp.json"))
	if !strings.Contains(string(b), "/opt/agentkernel") {
		t.Fatal("--force did not replace")
	}
}

func TestInstallCodexKeepsCommentsAndTables(t *testing.T) {
	o := opts(t)
	o.Global = true
	path := filepath.Join(o.Home, ".codex", "config.toml")
	os.MkdirAll(filepath.Dir(path), 0o755)
	orig := "# my settings\nmodel = \"o3\"\n\n[mcp_servers.other]\ncommand = \"x\"\n"
	os.WriteFile(path, []byte(orig), 0o644)
	if r := install(t, "codex", o); r.Action != "merged" {
		t.Fatalf("%+v", r)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), orig) {
		t.Fatalf("the user's part changed:\n%s", b)
	}
	var doc struct {
		MCPServers map[string]struct {
			Command string   `toml:"command"`
			Args    []string `toml:"args"`
		} `toml:"mcp_servers"`
	}
	if err := toml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.MCPServers["agentkernel"].Command != o.Command || doc.MCPServers["other"].Command != "x" {
		t.Fatalf("codex config:\n%s", b)
	}
	// Forced with another command: one agentkernel table, the new one.
	o.Force, o.Command = true, "/opt/ak"
	install(t, "codex", o)
	b, _ = os.ReadFile(path)
	if strings.Count(string(b), "[mcp_servers.agentkernel]") != 1 || !strings.Contains(string(b), "/opt/ak") || !strings.Contains(string(b), "[mcp_servers.other]") {
		t.Fatalf("forced codex config:\n%s", b)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	o := opts(t)
	o.DryRun = true
	r := install(t, "opencode", o)
	if r.Action != "created" || !strings.Contains(string(r.Content), `"mcp-server"`) {
		t.Fatalf("%+v", r)
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "opencode.json")); !os.IsNotExist(err) {
		t.Fatal("--dry-run wrote the file")
	}
}

func TestBadInput(t *testing.T) {
	if _, err := Lookup("vim"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("unknown target: %v", err)
	}
	if ts, _ := Lookup("all"); len(ts) != len(Targets()) {
		t.Fatal("all is not every target")
	}
	o := opts(t)
	path := filepath.Join(o.Dir, ".mcp.json")
	os.WriteFile(path, []byte("{not json"), 0o644)
	ts, _ := Lookup("mcp")
	if _, err := Install(ts[0], o); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("broken JSON: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{not json" {
		t.Fatal("a broken file was changed")
	}
	os.WriteFile(path, []byte(`{"mcpServers": 3}`), 0o644)
	if _, err := Install(ts[0], o); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("mcpServers not an object: %v", err)
	}
}
