package service

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/netd"
	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/state"
)

// Audit event types of the network path.
const (
	// AuditNetworkDenied is a connection or lookup the egress policy
	// refused (written by the network daemon).
	AuditNetworkDenied = "network_denied"
	// AuditNetworkPolicy is a change of a sandbox's egress rules.
	AuditNetworkPolicy = "network_policy_changed"
)

// NetworkUnavailable says why sandboxes cannot have network access on
// this host, or returns nil. Frontends pass it to sandbox.Resolve.
func (m *Manager) NetworkUnavailable() error {
	if m.opts.Network == nil {
		return fmt.Errorf("this program has no network path: %w", errdefs.ErrUnavailable)
	}
	return m.opts.Network.Probe()
}

// attacher connects a starting sandbox to the network daemon.
type attacher struct {
	m   *Manager
	rec *state.Record
}

func (a attacher) AttachTAP(ctx context.Context, tap, pidfd *os.File) ([]sandbox.PortMapping, error) {
	if a.m.opts.Network == nil {
		tap.Close()
		pidfd.Close()
		return nil, a.m.NetworkUnavailable()
	}
	c := a.rec.Config
	return a.m.opts.Network.Attach(ctx, netd.Request{Sandbox: a.rec.Name, Rules: c.Egress, Hosts: c.Hosts, Ports: c.Ports}, tap, pidfd)
}

// detachNetwork frees a stopped sandbox's network at once (its ports
// above all); the daemon would notice the sandbox's end by itself.
func (m *Manager) detachNetwork(ctx context.Context, rec *state.Record) {
	if rec.Config.Network != sandbox.NetworkNAT || m.opts.Network == nil {
		return
	}
	if err := m.opts.Network.Detach(ctx, rec.Name); err != nil {
		m.log.Warn("detaching a sandbox's network", "name", rec.Name, "err", err)
	}
}

// SetEgress changes a sandbox's egress rules: they replace the current
// ones, or with add are added to them. A running sandbox's new
// connections follow them at once; they are kept for its next start.
func (m *Manager) SetEgress(ctx context.Context, name string, rules netpolicy.Rules, add bool) (*Info, error) {
	rec, err := m.locked(ctx, name, func(rec *state.Record) (bool, error) {
		if rec.Config.Network != sandbox.NetworkNAT {
			return false, fmt.Errorf("sandbox %q has no network access (create it with network on to give it egress rules): %w", rec.Name, errdefs.ErrFailedPrecondition)
		}
		if add {
			rules = rec.Config.Egress.Merge(rules)
		}
		if _, err := netpolicy.Compile(rules); err != nil {
			return false, err
		}
		if rec.Status == sandbox.StatusRunning && m.alive(ctx, rec) {
			if m.opts.Network == nil {
				return false, m.NetworkUnavailable()
			}
			if err := m.opts.Network.SetPolicy(ctx, rec.Name, rules); err != nil && !errors.Is(err, errdefs.ErrFailedPrecondition) {
				return false, fmt.Errorf("sandbox %q: %w", rec.Name, err)
			}
		}
		rec.Config.Egress = rules
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	m.audit(ctx, rec.Name, AuditEntry{Type: AuditNetworkPolicy})
	return m.info(ctx, rec), nil
}

// DaemonStatus is what `daemon status` shows: the background processes of
// a data root.
type DaemonStatus struct {
	// PoolMaintainer tells whether a pool maintainer lingers.
	PoolMaintainer bool `json:"pool_maintainer"`
	// Network tells whether the network daemon runs, and Networked which
	// sandboxes it serves.
	Network   bool     `json:"network_daemon"`
	Networked []string `json:"networked_sandboxes,omitempty"`
}

// Daemons reports the data root's background processes.
func (m *Manager) Daemons(ctx context.Context) (DaemonStatus, error) {
	var st DaemonStatus
	st.PoolMaintainer = m.maintainerListening()
	if m.opts.Network != nil {
		running, names, err := m.opts.Network.Status(ctx)
		if err != nil {
			return st, err
		}
		st.Network, st.Networked = running, names
	}
	return st, nil
}

// StopDaemons stops the pool maintainer and the network daemon and waits
// for them. The network daemon does not stop while sandboxes use it.
func (m *Manager) StopDaemons(ctx context.Context) error {
	err := m.StopPoolMaintainer(ctx)
	if m.opts.Network != nil {
		err = errors.Join(err, m.opts.Network.Stop(ctx))
	}
	return err
}
