package cli

import (
	"fmt"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/agentkernel-go/agentkernel/internal/setup"
)

// The servers live in their own binary, agentkernel-server (see its
// package doc); these commands replace this process with it, so signals,
// stdio (MCP's transport) and the exit code are the server's own.

func (a *app) newServeCmd() *cobra.Command {
	return a.serverCmd("serve", "serve", "Serve the HTTP API (127.0.0.1:18888) and MCP at /mcp",
		"  agentkernel serve\n  agentkernel serve --port 9000 --api-key-file ~/.agentkernel/key")
}

func (a *app) newMCPServerCmd() *cobra.Command {
	return a.serverCmd("mcp-server", "mcp", "Serve MCP over stdio, for agents that use sandboxes as tools",
		"  agentkernel mcp-server")
}

func (a *app) newSetupCmd() *cobra.Command {
	return a.serverCmd("setup", "setup", "Prepare the guest microVMs boot: a kernel and an initramfs",
		"  agentkernel setup\n  agentkernel setup --kernel ./bzImage --initrd ./base.cpio.gz")
}

func (a *app) serverCmd(use, sub, short, example string) *cobra.Command {
	return &cobra.Command{
		Use:                use + " [flags]",
		Short:              short,
		Example:            example,
		DisableFlagParsing: true, // the server parses its own flags
		RunE: a.wrapInteractive(func(cmd *cobra.Command, args []string) error {
			bin, err := setup.FindServer(a.getenv)
			if err != nil {
				return err
			}
			argv := append([]string{bin, "--root", a.root, sub}, args...)
			if err := syscall.Exec(bin, argv, os.Environ()); err != nil {
				return fmt.Errorf("starting %s: %w", bin, err)
			}
			return nil
		}),
	}
}
