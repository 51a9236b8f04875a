package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/netd"
	"github.com/agentkernel-go/agentkernel/internal/procfs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/state"
)

// Options configure a Manager.
type Options struct {
	// Root is the data root holding sandboxes and images.
	Root string
	// Registry holds the backends built into this binary.
	Registry *sandbox.Registry
	// Images is the image store sandboxes are made from.
	Images *image.Store
	// DefaultBackend is used when a request names none; empty: auto-detect.
	DefaultBackend string
	Logger         *slog.Logger

	// PoolSize is how many started sandboxes Run keeps warm per
	// configuration; 0 disables the pool. See pool.go.
	PoolSize int
	// PoolIdle is how long an unclaimed pool sandbox lives (default 5m).
	PoolIdle time.Duration
	// Network is the network path of sandboxes with network on; nil means
	// they cannot have one here.
	Network *netd.Client
	// Background removes the named finished sandbox and runs MaintainPool,
	// away from the caller (the CLI starts a detached process). Required
	// for the pool: Run hands it the removal and the refill.
	Background func(remove string) error
}

// Manager is the sandbox manager. It is safe for concurrent use, also by
// several processes sharing one Root.
type Manager struct {
	opts  Options
	store *state.Store
	log   *slog.Logger

	self *state.Owner // this process, as the owner of the runs it makes

	mu      sync.Mutex
	clients map[string]*agentv1.Client // by sandbox id + start time
}

// cleanupTimeout bounds cleanup that runs after the caller's context ended.
const cleanupTimeout = 30 * time.Second

// New returns a manager over opts.Root, creating it if needed.
func New(ctx context.Context, opts Options) (*Manager, error) {
	if opts.Root == "" {
		return nil, fmt.Errorf("manager: no data root: %w", errdefs.ErrInvalidArgument)
	}
	if opts.Registry == nil || opts.Images == nil {
		return nil, fmt.Errorf("manager: registry and image store are required: %w", errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(opts.Root, 0o700); err != nil {
		return nil, fmt.Errorf("creating data root: %w", err)
	}
	st, err := state.Open(opts.Root)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{opts: opts, store: st, log: log, clients: map[string]*agentv1.Client{}}
	if _, start, err := procfs.Stat(os.Getpid()); err == nil {
		m.self = &state.Owner{PID: os.Getpid(), StartTime: start}
	}
	return m, nil
}

// Close releases cached agent connections.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, c := range m.clients {
		c.Close()
		delete(m.clients, k)
	}
	return nil
}

// backend returns the backend a record names.
func (m *Manager) backend(t sandbox.Type) (sandbox.Backend, error) {
	return m.opts.Registry.Get(string(t))
}

// pickBackend resolves a requested backend name, the default, or detection.
func (m *Manager) pickBackend(ctx context.Context, name string) (sandbox.Backend, error) {
	if name == "" {
		name = m.opts.DefaultBackend
	}
	if name == "" {
		b, _, err := m.opts.Registry.Detect(ctx)
		return b, err
	}
	b, err := m.opts.Registry.Get(name)
	if err != nil {
		return nil, err
	}
	if err := b.Probe(ctx); err != nil {
		return nil, fmt.Errorf("backend %s cannot run here: %w", b.Type(), err)
	}
	return b, nil
}

// spec builds what a backend needs from a record.
func (m *Manager) spec(rec *state.Record) *sandbox.Spec {
	return &sandbox.Spec{ID: rec.ID, Name: rec.Name, Config: rec.Config, RootFS: rec.RootFS, Dir: m.store.Dir(rec.Name)}
}

// resolveName finds a record by name or id.
func (m *Manager) resolveName(name string) (*state.Record, error) {
	nameErr := sandbox.ValidateName(name)
	if nameErr == nil {
		rec, err := m.store.Load(name)
		if !errors.Is(err, errdefs.ErrNotFound) {
			return rec, err
		}
	}
	if uuid.Validate(name) == nil {
		recs, err := m.store.List()
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.ID == name {
				return r, nil
			}
		}
	}
	if nameErr != nil {
		return nil, nameErr
	}
	return nil, fmt.Errorf("sandbox %q: %w", name, errdefs.ErrNotFound)
}

// alive reports whether a record's sandbox is really running.
func (m *Manager) alive(ctx context.Context, rec *state.Record) bool {
	if rec.Status != sandbox.StatusRunning || rec.Runtime == nil {
		return false
	}
	b, err := m.backend(rec.Backend)
	if err != nil {
		return false
	}
	return b.Alive(ctx, m.spec(rec), rec.Runtime)
}

// observed returns the record's status as it really is: a sandbox recorded
// as running whose processes died (crash, reboot, kill) reads as stopped.
func (m *Manager) observed(ctx context.Context, rec *state.Record) sandbox.Status {
	if rec.Status == sandbox.StatusRunning && !m.alive(ctx, rec) {
		return sandbox.StatusStopped
	}
	return rec.Status
}

func (m *Manager) info(ctx context.Context, rec *state.Record) *Info {
	in := &Info{
		ID: rec.ID, Name: rec.Name, Backend: rec.Backend, Status: m.observed(ctx, rec),
		Config: rec.Config, CreatedAt: rec.CreatedAt, StartedAt: rec.StartedAt, ExpiresAt: rec.ExpiresAt,
		Pooled: rec.Pool != "",
	}
	in.Crashed = rec.Status == sandbox.StatusRunning && in.Status != sandbox.StatusRunning
	if in.Status == sandbox.StatusRunning && rec.Runtime != nil {
		in.PID = rec.Runtime.PID
		in.Ports = rec.Runtime.Ports
	}
	return in
}

// Get returns a sandbox by name or id, with its status reconciled.
func (m *Manager) Get(ctx context.Context, name string) (*Info, error) {
	rec, err := m.resolveName(name)
	if err != nil {
		return nil, err
	}
	return m.info(ctx, rec), nil
}

// List returns every sandbox, sorted by name, statuses reconciled.
func (m *Manager) List(ctx context.Context) ([]*Info, error) {
	recs, err := m.store.List()
	if err != nil {
		return nil, err
	}
	out := make([]*Info, 0, len(recs))
	for _, r := range recs {
		out = append(out, m.info(ctx, r))
	}
	return out, nil
}

// Doctor probes every known backend and says which one auto-detection picks.
func (m *Manager) Doctor(ctx context.Context) (chosen sandbox.Type, choices []sandbox.Choice) {
	b, choices, err := m.opts.Registry.Detect(ctx)
	if err == nil {
		chosen = b.Type()
	}
	return chosen, choices
}
