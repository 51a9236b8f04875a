package server

import (
	"fmt"
	"os"
)

// runMCP is `agentkernel mcp-server`: MCP over stdio.
func runMCP(root string, args []string) int {
	fmt.Fprintln(os.Stderr, "agentkernel: mcp-server: MCP is not yet supported")
	return 5
}
