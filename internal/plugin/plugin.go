package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/pelletier/go-toml/v2"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// serverName is the key agentkernel's entry has in every config.
const serverName = "agentkernel"

// Target is an agent whose configuration can be written.
type Target struct {
	Name        string
	Description string
	// project and global are the config file, relative to the project
	// directory and to the home directory.
	project, global string
	format          format
}

type format int

const (
	mcpServersJSON format = iota // {"mcpServers": {"agentkernel": {...}}}
	openCodeJSON                 // {"mcp": {"agentkernel": {...}}}
	codexTOML                    // [mcp_servers.agentkernel]
)

// Targets lists what can be installed, in `plugin list` order.
func Targets() []Target {
	return []Target{
		{"claude", "Claude Code MCP server config", ".mcp.json", ".claude.json", mcpServersJSON},
		{"codex", "Codex MCP server config", ".codex/config.toml", ".codex/config.toml", codexTOML},
		{"gemini", "Gemini CLI MCP server config", ".gemini/settings.json", ".gemini/settings.json", mcpServersJSON},
		{"opencode", "OpenCode MCP server config", "opencode.json", ".config/opencode/opencode.json", openCodeJSON},
		{"mcp", "Generic MCP server config (.mcp.json)", ".mcp.json", ".mcp.json", mcpServersJSON},
	}
}

// Lookup finds a target by name; "all" is every target.
func Lookup(name string) ([]Target, error) {
	if name == "all" {
		return Targets(), nil
	}
	var names []string
	for _, t := range Targets() {
		if t.Name == name {
			return []Target{t}, nil
		}
		names = append(names, t.Name)
	}
	return nil, fmt.Errorf("unknown plugin target %q (want %s or all): %w", name, strings.Join(names, ", "), errdefs.ErrInvalidArgument)
}

// Options say where and how to install.
type Options struct {
	// Dir is the project directory; Home the user's home (Global).
	Dir, Home string
	Global    bool
	// Command is how agents start agentkernel (its path, or "agentkernel").
	Command string
	// Force replaces an agentkernel entry that differs; DryRun writes
	// nothing.
	Force, DryRun bool
}

// Result is what Install did (or, with DryRun, would do) to one file.
type Result struct {
	Target string
	Path   string
	// Action is "created", "merged", "up to date" or "differs" (an
	// entry that differs and was kept: use Force).
	Action string
	// Content is the file's new content (for DryRun output).
	Content []byte
}

// Path is the config file of t under opts.
func (t Target) Path(opts Options) string {
	if opts.Global {
		return filepath.Join(opts.Home, t.global)
	}
	return filepath.Join(opts.Dir, t.project)
}

// Install adds agentkernel to t's config file, keeping everything else in
// it. It is idempotent: an existing identical entry changes nothing.
func Install(t Target, opts Options) (Result, error) {
	path := t.Path(opts)
	res := Result{Target: t.Name, Path: path}
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	exists := err == nil
	var content []byte
	var present, same bool
	switch t.format {
	case codexTOML:
		content, present, same, err = mergeCodex(old, opts.Command)
	default:
		content, present, same, err = mergeJSON(old, t.format, opts.Command)
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case present && same:
		res.Action = "up to date"
		return res, nil
	case present && !opts.Force:
		res.Action = "differs"
		return res, nil
	case exists:
		res.Action = "merged"
	default:
		res.Action = "created"
	}
	res.Content = content
	if opts.DryRun {
		return res, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return res, err
	}
	return res, renameio.WriteFile(path, content, 0o644, renameio.WithExistingPermissions())
}

// entry is agentkernel's server entry in the format's own shape.
func entry(f format, command string) map[string]any {
	if f == openCodeJSON {
		return map[string]any{"type": "local", "command": []any{command, "mcp-server"}, "enabled": true}
	}
	return map[string]any{"command": command, "args": []any{"mcp-server"}}
}

// mergeJSON puts the entry into a JSON config (other keys are kept; they
// come out sorted, as encoding/json writes maps).
func mergeJSON(old []byte, f format, command string) (content []byte, present, same bool, err error) {
	doc := map[string]any{}
	if len(bytes.TrimSpace(old)) > 0 {
		if err := json.Unmarshal(old, &doc); err != nil {
			return nil, false, false, fmt.Errorf("not valid JSON (fix or move it first): %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	key := "mcpServers"
	if f == openCodeJSON {
		key = "mcp"
	}
	servers, _ := doc[key].(map[string]any)
	if servers == nil {
		if _, clash := doc[key]; clash {
			return nil, false, false, fmt.Errorf("%q is not an object: %w", key, errdefs.ErrInvalidArgument)
		}
		servers = map[string]any{}
	}
	want := entry(f, command)
	if cur, ok := servers[serverName]; ok {
		present = true
		a, _ := json.Marshal(cur)
		b, _ := json.Marshal(want)
		same = bytes.Equal(a, b)
	}
	servers[serverName] = want
	doc[key] = servers
	content, err = json.MarshalIndent(doc, "", "  ")
	return append(content, '\n'), present, same, err
}

// mergeCodex adds a [mcp_servers.agentkernel] table to Codex's config.toml.
// The file is edited as text, not re-encoded, so the user's comments and
// layout survive; with Force an existing table is replaced.
func mergeCodex(old []byte, command string) (content []byte, present, same bool, err error) {
	var doc map[string]any
	if err := toml.Unmarshal(old, &doc); err != nil {
		return nil, false, false, fmt.Errorf("not valid TOML (fix or move it first): %v: %w", err, errdefs.ErrInvalidArgument)
	}
	block := fmt.Sprintf("[mcp_servers.%s]\ncommand = %q\nargs = [\"mcp-server\"]\n", serverName, command)
	servers, _ := doc["mcp_servers"].(map[string]any)
	cur, present := servers[serverName].(map[string]any)
	if present {
		args, _ := cur["args"].([]any)
		same = cur["command"] == command && slices.Equal(args, []any{"mcp-server"})
	}
	text := string(old)
	if present {
		text = removeTable(text, "[mcp_servers."+serverName+"]")
	}
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	if text != "" {
		text += "\n"
	}
	return []byte(text + block), present, same, nil
}

// removeTable drops a TOML table (its header line up to the next header).
func removeTable(text, header string) string {
	var out []string
	skipping := false
	for _, line := range strings.SplitAfter(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") {
			skipping = trimmed == header
		}
		if !skipping {
			out = append(out, line)
		}
	}
	return strings.TrimRight(strings.Join(out, ""), "\n") + "\n"
}

// Installed reports whether t's config file has an agentkernel entry.
func Installed(t Target, opts Options) bool {
	old, err := os.ReadFile(t.Path(opts))
	if err != nil {
		return false
	}
	if t.format == codexTOML {
		var doc map[string]any
		if toml.Unmarshal(old, &doc) != nil {
			return false
		}
		servers, _ := doc["mcp_servers"].(map[string]any)
		_, ok := servers[serverName]
		return ok
	}
	var doc map[string]any
	if json.Unmarshal(old, &doc) != nil {
		return false
	}
	key := "mcpServers"
	if t.format == openCodeJSON {
		key = "mcp"
	}
	servers, _ := doc[key].(map[string]any)
	_, ok := servers[serverName]
	return ok
}
