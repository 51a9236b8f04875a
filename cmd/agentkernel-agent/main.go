// Command agentkernel-agent runs inside every sandbox and serves the agent
// protocol; see internal/agent.
package main

import (
	"os"

	"github.com/agentkernel-go/agentkernel/internal/agent"
)

func main() { os.Exit(agent.Main(os.Args[1:], os.Stdout, os.Stderr)) }
