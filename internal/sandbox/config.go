package sandbox

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
)

// Defaults, as in agentkernel.
const (
	DefaultImage     = "host"
	DefaultVCPUs     = 1
	DefaultMemoryMB  = 512
	DefaultPidsLimit = 1024
	// WorkspaceDir is where the current directory is mounted when asked.
	WorkspaceDir = "/workspace"
	// HomeMountDir is where the user's home is mounted read-only when asked.
	HomeMountDir = "/home/user"
)

// Network modes.
const (
	NetworkNone = "none" // a private network namespace with loopback only
	NetworkNAT  = "nat"  // egress through agentkernel's network path, under the egress policy
)

// Seccomp profiles.
const (
	SeccompDefault    = "default"    // deny-list in the spirit of Docker's default
	SeccompStrict     = "strict"     // default plus more (restrictive profile)
	SeccompUnconfined = "unconfined" // no filter; only where explicitly asked for
)

// Mount is a host path made visible in the sandbox.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only"`
}

// File is a file written into the sandbox before its first command runs.
type File struct {
	Path    string `json:"path"`
	Content []byte `json:"content"`
	Mode    uint32 `json:"mode,omitempty"` // default 0644
}

// Config is a sandbox's resolved configuration: a profile with explicit
// options applied on top. It is stored with the sandbox.
type Config struct {
	Image   string `json:"image"`
	Profile string `json:"profile"`

	VCPUs     int `json:"vcpus"`
	MemoryMB  int `json:"memory_mb"`
	PidsLimit int `json:"pids_limit"`
	// CPUPercent caps CPU time as a percentage of one CPU per vCPU (100 = no cap).
	CPUPercent int `json:"cpu_percent"`

	Network string        `json:"network"`
	Ports   []PortMapping `json:"ports,omitempty"`
	// Egress is the egress policy's rules (network nat); see netpolicy.
	Egress netpolicy.Rules `json:"egress,omitzero"`
	// Hosts are names the sandbox's resolver answers with fixed addresses.
	Hosts        map[string][]netip.Addr `json:"hosts,omitempty"`
	ReadOnlyRoot bool                    `json:"read_only_root"`
	Seccomp      string                  `json:"seccomp"`
	// AllowPtrace lets processes trace their own children (debuggers, strace).
	AllowPtrace bool `json:"allow_ptrace,omitempty"`

	Mounts  []Mount  `json:"mounts,omitempty"`
	Env     []string `json:"env,omitempty"` // KEY=VALUE for every command
	WorkDir string   `json:"workdir,omitempty"`
	User    string   `json:"user,omitempty"`
	Files   []File   `json:"files,omitempty"`

	TTL time.Duration `json:"ttl,omitempty"` // 0: lives until removed
	// IdleTimeout stops the sandbox once it has had no request and no
	// process for this long (0: never). Warm-pool sandboxes use it so an
	// unused pool frees itself without a daemon.
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
}

// Validate reports the first problem in a resolved config.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
	}
	if c.Image == "" {
		return bad("no image given")
	}
	if c.VCPUs < 1 || c.VCPUs > 256 {
		return bad("vcpus %d out of range 1..256", c.VCPUs)
	}
	if c.MemoryMB < 16 || c.MemoryMB > 1<<20 {
		return bad("memory %d MB out of range 16..1048576", c.MemoryMB)
	}
	if c.PidsLimit < 8 {
		return bad("pids limit %d below 8", c.PidsLimit)
	}
	if c.CPUPercent < 1 || c.CPUPercent > 100 {
		return bad("cpu percent %d out of range 1..100", c.CPUPercent)
	}
	switch c.Network {
	case NetworkNAT:
		if _, err := netpolicy.Compile(c.Egress); err != nil {
			return err
		}
		for name := range c.Hosts {
			if _, err := netpolicy.Compile(netpolicy.Rules{AllowDomains: []string{name}}); err != nil || strings.HasPrefix(name, "*") {
				return bad("host name %q is not a DNS name", name)
			}
		}
	case NetworkNone:
		if !c.Egress.IsZero() || len(c.Hosts) > 0 || len(c.Ports) > 0 {
			return bad("egress rules, hosts and published ports need network access")
		}
	default:
		return bad("unknown network mode %q (want none or nat)", c.Network)
	}
	switch c.Seccomp {
	case SeccompDefault, SeccompStrict, SeccompUnconfined:
	default:
		return bad("unknown seccomp profile %q", c.Seccomp)
	}
	for _, m := range c.Mounts {
		if !strings.HasPrefix(m.Source, "/") || !strings.HasPrefix(m.Target, "/") {
			return bad("mount %s:%s: both paths must be absolute", m.Source, m.Target)
		}
		if err := ValidatePath(m.Target); err != nil {
			return err
		}
	}
	for _, e := range c.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return bad("environment entry %q is not KEY=VALUE", e)
		}
	}
	if c.WorkDir != "" && !strings.HasPrefix(c.WorkDir, "/") {
		return bad("workdir %q must be absolute", c.WorkDir)
	}
	for _, f := range c.Files {
		if err := ValidatePath(f.Path); err != nil {
			return err
		}
	}
	if c.TTL < 0 || c.IdleTimeout < 0 {
		return bad("negative ttl or idle timeout")
	}
	return nil
}
