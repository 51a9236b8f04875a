package sandbox

import (
	"context"
	"encoding/json"
	"net"
	"os"
)

// Type names a backend.
type Type string

// Backend types. Only those registered in a build can be used; the others
// are known names so they get a clear "not yet supported" answer.
const (
	Native      Type = "native"
	MicroVM     Type = "microvm"
	Docker      Type = "docker"
	Podman      Type = "podman"
	GVisor      Type = "gvisor"
	Firecracker Type = "firecracker"
	Kubernetes  Type = "kubernetes"
	Nomad       Type = "nomad"
)

// Isolation ranks how strong a backend's isolation is; detection prefers
// the highest usable one.
type Isolation int

const (
	IsolationContainer  Isolation = 10 // shared kernel, namespaces + seccomp
	IsolationNative     Isolation = 20 // shared kernel, namespaces + seccomp + Landlock, no daemon
	IsolationUserKernel Isolation = 30 // application kernel (gVisor)
	IsolationVM         Isolation = 40 // own kernel behind a hypervisor
)

// RootFS is an image in the form a backend consumes: read-only lower
// directories (top first, as overlayfs wants them), read-only host binds on
// top (the host pseudo-image), and the image's runtime config.
type RootFS struct {
	// Image is the reference the user gave, for display.
	Image string `json:"image"`
	// Lowers are overlayfs lower directories, topmost first.
	Lowers []string `json:"lowers"`
	// Binds are host paths bound read-only into the sandbox over the lowers.
	Binds []Mount `json:"binds,omitempty"`
	// Config is the image's runtime configuration.
	Config ImageConfig `json:"config"`
}

// ImageConfig is the part of an OCI image config a sandbox honours.
type ImageConfig struct {
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
}

// Spec is everything a backend needs to start one sandbox.
type Spec struct {
	ID     string
	Name   string
	Config Config
	RootFS RootFS
	// Dir is the sandbox's private state directory (mode 0700). The backend
	// may keep anything there; the manager removes it after Backend.Remove.
	Dir string
	// Network connects the sandbox's interface to agentkernel's network
	// path when Config.Network is NetworkNAT (set by the manager for Start).
	Network NetworkAttacher `json:"-"`
}

// NetworkAttacher connects a starting sandbox's network interface to the
// network path (the manager's network daemon, package netd), which then
// serves it under the sandbox's egress policy.
type NetworkAttacher interface {
	// AttachTAP hands over the sandbox's TAP device and a pidfd of the
	// process whose exit ends the sandbox (the attacher owns both from
	// then on, also on error), and returns the published ports as bound.
	AttachTAP(ctx context.Context, tap, pidfd *os.File) ([]PortMapping, error)
}

// Runtime is what a backend records about a started sandbox so that any
// later process can find it again. The manager persists it verbatim.
type Runtime struct {
	PID       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"` // of PID, in clock ticks since boot: guards pid reuse
	// Ports are the published ports as bound (host ports chosen).
	Ports []PortMapping   `json:"ports,omitempty"`
	Extra json.RawMessage `json:"extra,omitempty"`
}

// Backend brings sandboxes up and down. Everything that happens inside a
// running sandbox (exec, files, PTY, processes) goes through the agent over
// the connection Dial returns, identically for every backend.
//
// Implementations must be safe for concurrent use on different sandboxes;
// the manager serialises operations on one sandbox.
type Backend interface {
	// Type is the backend's name.
	Type() Type
	// Isolation ranks the backend for auto-detection.
	Isolation() Isolation
	// Probe returns nil if the backend can run sandboxes here, otherwise an
	// error saying exactly why not (wrapping errdefs.ErrUnavailable).
	Probe(ctx context.Context) error
	// Start boots a sandbox whose agent is ready to accept connections when
	// Start returns. On error nothing it acquired is left behind.
	Start(ctx context.Context, spec *Spec) (*Runtime, error)
	// Alive reports whether a sandbox started earlier is still running.
	Alive(ctx context.Context, spec *Spec, rt *Runtime) bool
	// Dial connects to the sandbox's agent.
	Dial(ctx context.Context, spec *Spec, rt *Runtime) (net.Conn, error)
	// Stop ends every process of the sandbox and releases its runtime
	// resources (cgroups, VMs, ...) but keeps its filesystem. It is
	// idempotent and succeeds on a sandbox that already died. rt is nil
	// when no start was recorded (a start may have been interrupted by a
	// crash): the backend then finds what it can by the sandbox's id.
	Stop(ctx context.Context, spec *Spec, rt *Runtime) error
	// Remove deletes what the backend keeps for a stopped sandbox. Idempotent.
	Remove(ctx context.Context, spec *Spec) error
}
