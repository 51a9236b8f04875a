// Command agentkernel is the agentkernel CLI; everything happens in
// internal/cli. The native backend's hidden re-exec entry point (a sandbox's
// init) is intercepted before anything else.
package main

import (
	"os"

	"github.com/agentkernel-go/agentkernel/internal/backend/native"
	"github.com/agentkernel-go/agentkernel/internal/cli"
)

func main() {
	native.MaybeInit()
	os.Exit(cli.Main(os.Args[1:]))
}
