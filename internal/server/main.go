package server

import (
	"fmt"
	"os"
)

// Main runs agentkernel-server with args (without the program name) and
// returns its exit code: [--root DIR] serve|mcp|fetch|net|setup [flags]. The CLI always
// passes --root (resolved as for every command); without it the server
// resolves the data root itself (setup.DefaultRoot).
func Main(args []string) int {
	root := ""
	if len(args) >= 2 && args[0] == "--root" {
		root, args = args[1], args[2:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: agentkernel-server serve|mcp [flags]")
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(root, args[1:])
	case "mcp":
		return runMCP(root, args[1:])
	case "fetch":
		return runFetch(root, args[1:])
	case "net":
		return runNetd(root, args[1:])
	case "setup":
		return runSetup(root, args[1:])
	}
	fmt.Fprintf(os.Stderr, "agentkernel-server: unknown command %q (want serve or mcp)\n", args[0])
	return 2
}
