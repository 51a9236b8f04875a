package server

import (
	"fmt"
	"os"
)

// runServe is `agentkernel serve`.
func runServe(root string, args []string) int {
	fmt.Fprintln(os.Stderr, "agentkernel: serve: the HTTP API is not yet supported")
	return 5
}
