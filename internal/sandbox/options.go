package sandbox

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
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
	// Egress are egress rules given explicitly (flags, API, config file);
	// NetworkPreset names agent preset rules to add (netpolicy.Preset);
	// Hosts are fixed names for the sandbox's resolver. Any of them asks
	// for network access.
	Egress        netpolicy.Rules
	NetworkPreset string
	Hosts         map[string][]netip.Addr
	// NetworkUnavailable, if set, says why this host cannot give sandboxes
	// network access: a profile's network then falls back to loopback
	// with a warning, an explicit request fails with it.
	NetworkUnavailable error
	Mounts             []Mount
	Env                []string
	WorkDir            string
	User               string
	Files              []File
	TTL                time.Duration
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

	// Network: the profile's default, or what was asked. Rules, hosts and
	// ports ask for it too. Bad rules are bad input wherever they go.
	var preset netpolicy.Rules
	if o.NetworkPreset != "" {
		if preset, err = netpolicy.Preset(o.NetworkPreset); err != nil {
			return Config{}, nil, err
		}
	}
	if _, err := netpolicy.Compile(o.Egress); err != nil {
		return Config{}, nil, err
	}
	wantNet, explicit := p.Network, false
	asked := !o.Egress.IsZero() || o.NetworkPreset != "" || len(o.Hosts) > 0 || len(o.Ports) > 0
	if o.Network != nil {
		wantNet, explicit = *o.Network, true
		if !wantNet && asked {
			return Config{}, nil, fmt.Errorf("egress rules, hosts and published ports need network access, which was turned off: %w", errdefs.ErrInvalidArgument)
		}
	}
	if asked {
		wantNet, explicit = true, true
	}
	switch {
	case wantNet && o.NetworkUnavailable != nil && explicit:
		return Config{}, nil, fmt.Errorf("network access for sandboxes: %w", o.NetworkUnavailable)
	case wantNet && o.NetworkUnavailable != nil:
		// Only a profile asked for by name is worth a warning on every
		// command; info shows the fallback either way.
		if o.Profile != "" {
			warnings = append(warnings, fmt.Sprintf("profile %s enables network, but %v: the sandbox has loopback only", p.Name, o.NetworkUnavailable))
		}
	case wantNet:
		c.Network = NetworkNAT
		c.Egress = preset.Merge(o.Egress)
		c.Hosts = o.Hosts
		c.Ports = o.Ports
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
