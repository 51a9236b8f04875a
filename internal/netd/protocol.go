package netd

import (
	"net/netip"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

const (
	socketName = "netd.sock"
	lockName   = "netd.lock"
	logName    = "netd.log"
)

// Request is one line on the daemon's socket. An "attach" carries the
// sandbox's interface as an attached descriptor.
type Request struct {
	Op      string `json:"op"` // attach, policy, detach, status
	Sandbox string `json:"sandbox,omitempty"`
	// Attach and policy.
	Rules netpolicy.Rules `json:"rules"`
	// Attach.
	Hosts map[string][]netip.Addr `json:"hosts,omitempty"`
	Ports []sandbox.PortMapping   `json:"ports,omitempty"`
}

// Response answers a Request.
type Response struct {
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"` // the error's errdefs kind
	// Ports are the published ports as bound (attach).
	Ports []sandbox.PortMapping `json:"ports,omitempty"`
	// Sandboxes are the attached sandboxes (status).
	Sandboxes []string `json:"sandboxes,omitempty"`
}
