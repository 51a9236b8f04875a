package sandbox

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// Options are what a user asked for; nil pointers and empty values mean
// "what the profile says". Resolve turns them into a Config.
type Options struct {
	Profile      string
	Image        string
	VCPUs        *int
	MemoryMB     *int
	PidsLimit    *int
	Network      *bool // explicit --network / --no-network
	ReadOnlyRoot *bool
	MountCwd     *bool
	MountHome    *bool
	Ports        []PortMapping
	Mounts       []Mount
	Env          []string
	WorkDir      string
	User         string
	Files        []File
	TTL          time.Duration
	// Cwd and Home are the caller's directories, used by MountCwd/MountHome.
	Cwd  string
	Home string
	// HostEnv is the caller's environment, passed through when the profile
	// says so (only a safe subset).
	HostEnv []string
}

// passEnvKeys is the subset of the host environment a permissive profile
// passes through: locale and terminal, never credentials.
var passEnvKeys = []string{"LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "COLORTERM"}

// NetworkAvailable reports whether network mode nat can be built yet. Until
// the networking issue lands it is false, and Resolve degrades as documented.
const NetworkAvailable = false

// Resolve applies o on top of its profile. Warnings are things the user
// should hear about but that do not stop the sandbox.
func Resolve(o Options) (Config, []string, error) {
	p, err := LookupProfile(o.Profile)
	if err != nil {
		return Config{}, nil, err
	}
	c := p.Config()
	var warnings []string
	if o.Image != "" {
		c.Image = o.Image
	}
	set := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
		}
	}
	set(&c.VCPUs, o.VCPUs)
	set(&c.MemoryMB, o.MemoryMB)
	set(&c.PidsLimit, o.PidsLimit)
	if o.ReadOnlyRoot != nil {
		c.ReadOnlyRoot = *o.ReadOnlyRoot
	}

	// Network: an explicit request for network fails clearly; a profile
	// default of "on" falls back to none, which `info` shows.
	wantNet := p.Network
	if o.Network != nil {
		wantNet = *o.Network
		if wantNet && !NetworkAvailable {
			return Config{}, nil, fmt.Errorf("network access for sandboxes: %w (sandboxes get loopback only; leave out --network)", errdefs.ErrNotImplemented)
		}
	}
	if wantNet && NetworkAvailable {
		c.Network = NetworkNAT
	}
	if wantNet && !NetworkAvailable && o.Profile != "" {
		warnings = append(warnings, fmt.Sprintf("profile %s enables network, which is not yet supported: the sandbox has loopback only", p.Name))
	}

	mountCwd, mountHome := p.MountCwd, p.MountHome
	if o.MountCwd != nil {
		mountCwd = *o.MountCwd
	}
	if o.MountHome != nil {
		mountHome = *o.MountHome
	}
	if mountCwd {
		if o.Cwd == "" {
			return Config{}, nil, fmt.Errorf("mounting the current directory: unknown current directory: %w", errdefs.ErrInvalidArgument)
		}
		c.Mounts = append(c.Mounts, Mount{Source: o.Cwd, Target: WorkspaceDir})
		c.WorkDir = WorkspaceDir
	}
	if mountHome && o.Home != "" {
		c.Mounts = append(c.Mounts, Mount{Source: o.Home, Target: HomeMountDir, ReadOnly: true})
	}
	c.Mounts = append(c.Mounts, o.Mounts...)

	if p.PassEnv {
		for _, kv := range o.HostEnv {
			k, _, _ := strings.Cut(kv, "=")
			for _, allowed := range passEnvKeys {
				if k == allowed {
					c.Env = append(c.Env, kv)
				}
			}
		}
	}
	c.Env = append(c.Env, o.Env...)
	c.Ports = o.Ports
	if len(c.Ports) > 0 {
		return Config{}, nil, fmt.Errorf("publishing ports: %w (needs sandbox networking)", errdefs.ErrNotImplemented)
	}
	if o.WorkDir != "" {
		c.WorkDir = o.WorkDir
	}
	c.User = o.User
	c.Files = o.Files
	c.TTL = o.TTL
	if err := c.Validate(); err != nil {
		return Config{}, nil, err
	}
	for _, m := range c.Mounts {
		if _, err := os.Stat(m.Source); err != nil {
			return Config{}, nil, fmt.Errorf("mount source %s: %w", m.Source, errdefs.ErrInvalidArgument)
		}
	}
	return c, warnings, nil
}
