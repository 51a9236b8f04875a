package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/netd"
	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
	"github.com/agentkernel-go/agentkernel/internal/netstack"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
	"github.com/agentkernel-go/agentkernel/internal/setup"
	"github.com/agentkernel-go/agentkernel/internal/state"
)

// netdLinger is how long the network daemon stays without sandboxes: the
// next networked sandbox then finds it running.
const netdLinger = 2 * time.Minute

// runNetd is the network daemon of a data root (package netd), started by
// the first sandbox with network on.
func runNetd(root string, args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(os.Stderr, "usage: agentkernel-server [--root DIR] net")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if root == "" {
		var err error
		if root, err = setup.DefaultRoot(os.Getenv); err != nil {
			log.Error("data root", "err", err)
			return 1
		}
	}
	store, err := state.Open(root)
	if err != nil {
		log.Error("state store", "err", err)
		return 1
	}
	if err := netd.Serve(ctx, root, netdLinger, stackFactory(store, log), log); err != nil {
		log.Error("network daemon", "err", err)
		return 1
	}
	return 0
}

// stackFactory serves each sandbox's TAP device with a netstack.Stack,
// publishing its ports on the host's loopback, and writes refusals to
// the sandbox's audit log.
func stackFactory(store *state.Store, log *slog.Logger) netd.Factory {
	return func(tap *os.File, req netd.Request) (netd.Network, []sandbox.PortMapping, error) {
		pol, err := netpolicy.Compile(req.Rules)
		if err != nil {
			tap.Close()
			return nil, nil, err
		}
		name := req.Sandbox
		s, err := netstack.New(tap, netstack.Config{
			Policy: pol,
			Hosts:  req.Hosts,
			Audit: func(e netstack.Event) {
				line, _ := json.Marshal(service.AuditEntry{
					Timestamp: e.Time, PID: os.Getpid(), Type: service.AuditNetworkDenied, Sandbox: name,
					Protocol: e.Protocol, Destination: e.Dest, Domain: e.Name, Rule: e.Rule,
				})
				if err := store.AppendAudit(name, line); err != nil {
					log.Warn("audit", "sandbox", name, "err", err)
				}
			},
		})
		if err != nil {
			return nil, nil, err
		}
		var bound []sandbox.PortMapping
		for _, pm := range req.Ports {
			b, err := s.Publish(pm, netip.MustParseAddr("127.0.0.1"))
			if err != nil {
				s.Close()
				return nil, nil, err
			}
			bound = append(bound, b)
		}
		return stackNetwork{s}, bound, nil
	}
}

// stackNetwork is a Stack as the daemon drives it.
type stackNetwork struct{ *netstack.Stack }

func (n stackNetwork) SetPolicy(r netpolicy.Rules) error {
	p, err := netpolicy.Compile(r)
	if err != nil {
		return err
	}
	n.Stack.SetPolicy(p)
	return nil
}
