// Package mcpserver is agentkernel's MCP server: the sandbox tools an agent
// calls (sandbox_run, sandbox_exec, files, detached commands, ...), with
// the names and arguments of agentkernel's own MCP server, as a thin
// frontend over the manager. New builds the server for any transport
// (stdio in `agentkernel mcp-server`); HTTPHandler serves it as MCP's
// streamable HTTP transport (/mcp of `agentkernel serve`).
//
// Every failure — bad input, unknown sandbox, a command that cannot start
// or exits non-zero — is a tool result with isError set and a clear text,
// never a protocol error. Text results are cut to MaxOutput bytes (head
// and tail, with a marker saying how much was left out) so one chatty
// command cannot flood an agent's context.
//
// Host side, a frontend: it imports the manager and the sandbox types,
// never a backend, the HTTP API or the CLI.
package mcpserver
