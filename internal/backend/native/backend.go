//go:build linux

package native

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"

	"github.com/agentkernel-go/agentkernel/internal/cgroups"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// Options configure the backend.
type Options struct {
	// AgentPath is the agentkernel-agent binary run as every sandbox's PID 1.
	AgentPath string
	// Root is the data root (where uid ranges are allocated). Empty means
	// the parent of the sandboxes directory holding spec.Dir, i.e.
	// <root>/sandboxes/<name> -> <root>.
	Root   string
	Logger *slog.Logger
}

// Backend is the native backend.
type Backend struct {
	opts Options
	log  *slog.Logger

	probeOnce sync.Once
	probeErr  error

	// The cgroup layout is read once per Backend (mountinfo does not change
	// under a running agentkernel in practice).
	layoutOnce sync.Once
	layout     *cgroups.Layout
	layoutErr  error
}

var _ sandbox.Backend = (*Backend)(nil)

// New returns a native backend.
func New(opts Options) *Backend {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backend{opts: opts, log: log}
}

// Type is sandbox.Native.
func (b *Backend) Type() sandbox.Type { return sandbox.Native }

// Isolation is sandbox.IsolationNative.
func (b *Backend) Isolation() sandbox.Isolation { return sandbox.IsolationNative }

// Dial connects to the sandbox's agent socket.
func (b *Backend) Dial(ctx context.Context, spec *sandbox.Spec, rt *sandbox.Runtime) (net.Conn, error) {
	c, err := dialUnix(ctx, socketPath(spec))
	if err != nil {
		return nil, fmt.Errorf("connecting to the agent of sandbox %q: %w: %w", spec.Name, errdefs.ErrUnavailable, err)
	}
	return c, nil
}

// extra is what Runtime.Extra records for Stop and Remove.
type extra struct {
	Cgroups []cgroups.Dir `json:"cgroups,omitempty"`
	// HostUID/HostGID/IDs are the host ids sandbox id 0.. maps to.
	HostUID int  `json:"host_uid"`
	HostGID int  `json:"host_gid"`
	IDs     int  `json:"ids"`
	Slot    int  `json:"slot"` // -1 when rootless
	Limits  bool `json:"limits"`
}

func parseExtra(rt *sandbox.Runtime) (extra, error) {
	var ex extra
	if rt == nil || len(rt.Extra) == 0 {
		return ex, nil
	}
	if err := json.Unmarshal(rt.Extra, &ex); err != nil {
		return ex, fmt.Errorf("native runtime record: %w: %w", errdefs.ErrInternal, err)
	}
	return ex, nil
}

// dataRoot is where the backend keeps state shared between sandboxes.
func (b *Backend) dataRoot(spec *sandbox.Spec) string {
	if b.opts.Root != "" {
		return b.opts.Root
	}
	return filepath.Dir(filepath.Dir(spec.Dir))
}

// Files the backend keeps in spec.Dir.
const (
	socketName  = "agent.sock"
	logName     = "agent.log"
	overlayName = "ovl" // holds upper/ and work/
	stateName   = "native.json"
)

func socketPath(spec *sandbox.Spec) string { return filepath.Join(spec.Dir, socketName) }
