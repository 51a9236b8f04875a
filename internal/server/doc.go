// Package server is agentkernel-server: it builds the manager (package
// setup) and serves it — the HTTP API with MCP at /mcp (`serve`), or MCP
// over stdio (`mcp`). Routes live in internal/server/http, MCP tools in
// internal/server/mcp; this package only composes and runs them.
//
// Host side, a frontend: it calls the manager and imports no backend
// beyond what setup wires.
package server
