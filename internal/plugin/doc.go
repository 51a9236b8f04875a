// Package plugin installs agentkernel into coding agents' configuration:
// it writes (or merges into) the MCP configuration files Claude Code,
// Codex, Gemini CLI, OpenCode and generic MCP clients read, so that they
// start `agentkernel mcp-server` and get sandboxes as tools.
//
// Host side. It touches only the files it names; it imports no sandbox
// package.
package plugin
