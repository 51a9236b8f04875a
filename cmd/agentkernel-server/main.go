// Command agentkernel-server is agentkernel's HTTP API and MCP server
// (`agentkernel serve`, `agentkernel mcp-server` start it). It is a binary
// of its own so that the libraries only a server needs — metrics, MCP,
// WebSocket — add nothing to the start-up of every CLI command.
package main

import (
	"os"

	"github.com/agentkernel-go/agentkernel/internal/backend/native"
	"github.com/agentkernel-go/agentkernel/internal/server"
)

func main() {
	native.MaybeInit() // a sandbox's init stage re-executes this binary
	os.Exit(server.Main(os.Args[1:]))
}
