package netpolicy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// registries are the package registries and code hosts every agent
// preset allows: what coding agents fetch while they work.
var registries = []string{
	"*.github.com", "*.githubusercontent.com", "*.pypi.org", "files.pythonhosted.org",
	"*.npmjs.org", "*.npmjs.com", "*.yarnpkg.com", "*.crates.io", "proxy.golang.org", "sum.golang.org",
}

// presets are the agents' allow-lists, after agentkernel's compatibility
// modes: the agent's API hosts plus the registries, and nothing else.
var presets = map[string][]string{
	"claude": {"api.anthropic.com", "cdn.anthropic.com", "statsig.anthropic.com", "claude.ai"},
	"codex":  {"api.openai.com", "cdn.openai.com", "auth.openai.com", "chatgpt.com"},
	"gemini": {"generativelanguage.googleapis.com", "*.googleapis.com", "oauth2.googleapis.com"},
}

// Preset returns the rules of an agent preset (claude, codex, gemini):
// allowlist-only, with the agent's API hosts, package registries and
// GitHub.
func Preset(name string) (Rules, error) {
	hosts, ok := presets[strings.ToLower(name)]
	if !ok {
		return Rules{}, fmt.Errorf("unknown network preset %q (want one of %s): %w", name, strings.Join(PresetNames(), ", "), errdefs.ErrInvalidArgument)
	}
	return Rules{AllowlistOnly: true, AllowDomains: append(slices.Clone(hosts), registries...)}, nil
}

// PresetNames lists the presets.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
