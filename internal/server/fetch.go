package server

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/image/fetchcmd"
	"github.com/agentkernel-go/agentkernel/internal/image/ingest"
	"github.com/agentkernel-go/agentkernel/internal/setup"
)

// runFetch is the image helper of the CLI (package fetchcmd): it pulls or
// imports into the store of root and reports on stdout.
func runFetch(root string, args []string) int {
	// SIGTERM and SIGINT end the fetch through its context, so that its
	// work in progress is removed on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if root == "" {
		var err error
		if root, err = setup.DefaultRoot(os.Getenv); err != nil {
			fmt.Fprintln(os.Stderr, "agentkernel-server:", err)
			return 1
		}
	}
	return fetchcmd.Serve(ctx, args, os.Stdout, func(opts image.Options) *image.Store {
		return ingest.NewStore(root, opts)
	})
}
