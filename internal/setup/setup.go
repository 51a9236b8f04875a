// Package setup builds what every agentkernel binary needs from its
// environment: the data root, the agent binary, the backends, the image
// store and the manager over them. The CLI and the server both start here,
// so they read AGENTKERNEL_* the same way.
//
// Host side. It imports the manager, the backends and the image store,
// never a frontend.
package setup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/backend/microvm"
	"github.com/agentkernel-go/agentkernel/internal/backend/native"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/image/fetchcmd"
	"github.com/agentkernel-go/agentkernel/internal/netd"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
	"github.com/agentkernel-go/agentkernel/internal/vmm/qemu"
)

// Defaults of the warm pool `run` uses (see internal/service/pool.go).
const (
	DefaultPoolSize = 1
	DefaultPoolIdle = 5 * time.Minute
	// MaintainerLinger is how long a pool maintainer waits for the next
	// run's hand-off before it exits (see internal/service/pool_handoff.go).
	MaintainerLinger = time.Minute
)

// PoolSettings reads AGENTKERNEL_POOL (sandboxes kept warm per
// configuration; 0 turns the pool off) and AGENTKERNEL_POOL_IDLE (how long
// an unused one lives).
func PoolSettings(getenv func(string) string) (size int, idle time.Duration, err error) {
	size, idle = DefaultPoolSize, DefaultPoolIdle
	if v := getenv("AGENTKERNEL_POOL"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 0 || size > 64 {
			return 0, 0, fmt.Errorf("AGENTKERNEL_POOL=%q: want a number from 0 to 64: %w", v, errdefs.ErrInvalidArgument)
		}
	}
	if v := getenv("AGENTKERNEL_POOL_IDLE"); v != "" {
		if idle, err = time.ParseDuration(v); err != nil || idle <= 0 {
			return 0, 0, fmt.Errorf("AGENTKERNEL_POOL_IDLE=%q: want a positive duration such as 5m: %w", v, errdefs.ErrInvalidArgument)
		}
	}
	return size, idle, nil
}

// DefaultRoot is $AGENTKERNEL_ROOT, else $XDG_DATA_HOME/agentkernel, else
// ~/.local/share/agentkernel.
func DefaultRoot(getenv func(string) string) (string, error) {
	if dir := getenv("AGENTKERNEL_ROOT"); dir != "" {
		return dir, nil
	}
	if dir := getenv("XDG_DATA_HOME"); dir != "" {
		return filepath.Join(dir, "agentkernel"), nil
	}
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("no data root: set --root or AGENTKERNEL_ROOT (%v): %w", err, errdefs.ErrInvalidArgument)
		}
	}
	return filepath.Join(home, ".local", "share", "agentkernel"), nil
}

func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "warn", "warning":
		return slog.LevelWarn, nil
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error): %w", s, errdefs.ErrInvalidArgument)
}

// AgentName is the agent binary's file name; ServerName the server's.
const (
	AgentName  = "agentkernel-agent"
	ServerName = "agentkernel-server"
)

// AgentFallbacks are the system-wide install locations of the agent.
var AgentFallbacks = fallbacks(AgentName)

func fallbacks(name string) []string {
	return []string{"/usr/local/lib/agentkernel/" + name, "/usr/lib/agentkernel/" + name}
}

// FindAgent locates the agent binary: $AGENTKERNEL_AGENT, else next to the
// running executable, else on $PATH, else the system-wide locations.
func FindAgent(getenv func(string) string) (string, error) {
	return findBinary(getenv, "AGENTKERNEL_AGENT", "agent", AgentName)
}

// FindServer locates agentkernel-server the same way ($AGENTKERNEL_SERVER
// first).
func FindServer(getenv func(string) string) (string, error) {
	return findBinary(getenv, "AGENTKERNEL_SERVER", "server", ServerName)
}

func findBinary(getenv func(string) string, env, what, name string) (string, error) {
	if p := getenv(env); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("%s binary from %s: %v: %w", what, env, err, errdefs.ErrUnavailable)
		}
		return filepath.Abs(p)
	}
	var tried []string
	if self, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(self); err == nil {
			self = resolved
		}
		p := filepath.Join(filepath.Dir(self), name)
		if checkExecutable(p) == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	tried = append(tried, "$PATH")
	for _, p := range fallbacks(name) {
		if checkExecutable(p) == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("%s binary %s not found (set %s; tried %s): %w",
		what, name, env, strings.Join(tried, ", "), errdefs.ErrUnavailable)
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s does not exist", p)
		}
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// NewRegistry lists the backends built into this binary.
func NewRegistry(root, agentPath string, logger *slog.Logger) *sandbox.Registry {
	return sandbox.NewRegistry(
		native.New(native.Options{AgentPath: agentPath, Root: root, Logger: logger}),
		microvm.New(microvm.Options{AgentPath: agentPath, Root: root, Logger: logger}),
	)
}

// NetworkUnavailable says why sandboxes cannot have network access on this
// host (no /dev/net/tun for this user, no agentkernel-server to run the
// network daemon), or returns nil. It touches no data root.
func NetworkUnavailable(getenv func(string) string) error {
	return netd.NewClient("", func() (string, error) { return FindServer(getenv) }).Probe()
}

// MicroVM says what microVMs would run on here: QEMU's path (or why there
// is none) and the accelerator ProbeKVM allows, with the reason.
func MicroVM() (qemuPath string, qemuErr error, accel qemu.Accel, why string) {
	qemuPath, qemuErr = qemu.Find("")
	accel, why = qemu.ChooseAccel()
	return qemuPath, qemuErr, accel, why
}

// Config is what Manager needs besides the environment.
type Config struct {
	Root   string
	Getenv func(string) string
	Logger *slog.Logger
	// Images are the image store's settings from flags;
	// AGENTKERNEL_PLATFORM and AGENTKERNEL_INSECURE_REGISTRIES
	// (comma-separated) fill what they leave empty.
	Images image.Options
	// Fetcher makes the image store's fetcher. Nil means the helper
	// process (package fetchcmd): the binary that links the registry
	// client, agentkernel-server, passes its own.
	Fetcher func(*image.Store) image.Fetcher
	// Background is the manager's Options.Background (the warm pool).
	Background func(remove string) error
}

// Manager builds the manager over cfg.Root with every backend of this
// binary. agentErr says why the agent binary was not found: commands that
// start sandboxes must report it; the others work without it.
func Manager(ctx context.Context, cfg Config) (mgr *service.Manager, agentErr error, err error) {
	agentPath, agentErr := FindAgent(cfg.Getenv)
	defaultBackend := cfg.Getenv("AGENTKERNEL_BACKEND")
	if defaultBackend != "" {
		if _, err := sandbox.ParseType(defaultBackend); err != nil {
			return nil, nil, fmt.Errorf("AGENTKERNEL_BACKEND: %w", err)
		}
	}
	poolSize, poolIdle, err := PoolSettings(cfg.Getenv)
	if err != nil {
		return nil, nil, err
	}
	opts := cfg.Images
	opts.Getenv = cfg.Getenv
	if opts.Platform == "" {
		opts.Platform = cfg.Getenv("AGENTKERNEL_PLATFORM")
	}
	if v := cfg.Getenv("AGENTKERNEL_INSECURE_REGISTRIES"); v != "" {
		for _, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r != "" {
				opts.Insecure = append(opts.Insecure, r)
			}
		}
	}
	opts.Fetcher = cfg.Fetcher
	if opts.Fetcher == nil {
		opts.Fetcher = fetchcmd.New(cfg.Root, func() (string, error) { return FindServer(cfg.Getenv) })
	}
	mgr, err = service.New(ctx, service.Options{
		Root:           cfg.Root,
		Registry:       NewRegistry(cfg.Root, agentPath, cfg.Logger),
		Images:         image.NewStore(cfg.Root, opts),
		Network:        netd.NewClient(cfg.Root, func() (string, error) { return FindServer(cfg.Getenv) }),
		DefaultBackend: defaultBackend,
		Logger:         cfg.Logger,
		PoolSize:       poolSize,
		PoolIdle:       poolIdle,
		Background:     cfg.Background,
	})
	return mgr, agentErr, err
}
