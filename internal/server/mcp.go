package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image/ingest"
	mcpserver "github.com/agentkernel-go/agentkernel/internal/server/mcp"
	"github.com/agentkernel-go/agentkernel/internal/setup"
)

// runMCP is `agentkernel mcp-server`: MCP over stdio until the client
// closes stdin (or SIGINT/SIGTERM). stdout is the protocol: everything
// else goes to stderr.
func runMCP(root string, args []string) int {
	fs := flag.NewFlagSet("agentkernel mcp-server", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	logLevel := fs.String("log-level", "warn", "log level on stderr: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return errdefs.ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "agentkernel mcp-server: unexpected arguments %q\n", fs.Args())
		return errdefs.ExitUsage
	}
	level, err := setup.ParseLogLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(os.Stderr, "agentkernel mcp-server: %v\n", err)
		return errdefs.ExitUsage
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := serveMCPStdio(root, log); err != nil {
		fmt.Fprintf(os.Stderr, "agentkernel mcp-server: %v\n", err)
		return errdefs.ExitCode(err)
	}
	return 0
}

func serveMCPStdio(root string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if root == "" {
		var err error
		if root, err = setup.DefaultRoot(os.Getenv); err != nil {
			return err
		}
	}
	// The warm pool is kept in-process, as `serve` keeps it (serve.go).
	pool := &poolWorker{log: log}
	mgr, agentErr, err := setup.Manager(ctx, setup.Config{
		Root: root, Getenv: os.Getenv, Logger: log, Fetcher: ingest.New, Background: pool.enqueue,
	})
	if err != nil {
		return err
	}
	defer mgr.Close()
	if agentErr != nil {
		log.Warn("sandboxes cannot start", "err", agentErr)
	}
	poolCtx, stopPool := context.WithCancel(ctx)
	pool.start(poolCtx, mgr)
	defer pool.wait() // after stopPool: finishes what the last runs left
	defer stopPool()

	opts := mcpserver.Options{Logger: log, AgentErr: agentErr, HostEnv: os.Environ(), Home: os.Getenv("HOME")}
	opts.Cwd, _ = os.Getwd()
	if opts.Home == "" {
		opts.Home, _ = os.UserHomeDir()
	}
	log.Info("serving MCP over stdio", "root", root)
	err = mcpserver.New(mgr, opts).Run(ctx, &mcp.StdioTransport{})
	if ctx.Err() != nil || err == nil {
		return nil // the client closed stdin, or we were told to stop
	}
	return err
}
