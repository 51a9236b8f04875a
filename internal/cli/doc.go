// Package cli is the agentkernel command line: it parses flags and
// arguments, makes one call into the manager (internal/service) per
// operation, and renders the result. Errors become exit codes in exactly one
// place (errors.go).
//
// Host side. It imports the manager, the sandbox model and the agent
// protocol types; the only backend and image packages it touches are the
// ones wiring.go builds into the binary. It must not import another frontend
// (HTTP, MCP).
package cli
