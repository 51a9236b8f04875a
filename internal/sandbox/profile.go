package sandbox

import (
	"fmt"
	"slices"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// Profile names, with agentkernel's meanings.
const (
	ProfilePermissive  = "permissive"
	ProfileModerate    = "moderate"
	ProfileRestrictive = "restrictive"
	DefaultProfile     = ProfileModerate
)

// Profile is a named set of defaults. Explicit options override it.
type Profile struct {
	Name         string
	Network      bool // wants network; see ResolveNetwork
	MountCwd     bool // mount the current directory at /workspace
	MountHome    bool // mount $HOME read-only at /home/user
	PassEnv      bool // pass PATH-independent host env (LANG, TERM, ...)
	ReadOnlyRoot bool
	MemoryMB     int
	CPUPercent   int
	PidsLimit    int
	Seccomp      string
	AllowPtrace  bool
}

var profiles = []Profile{
	{Name: ProfilePermissive, Network: true, MountCwd: true, MountHome: true, PassEnv: true,
		MemoryMB: 2048, CPUPercent: 100, PidsLimit: 4096, Seccomp: SeccompDefault, AllowPtrace: true},
	{Name: ProfileModerate, Network: true,
		MemoryMB: DefaultMemoryMB, CPUPercent: 100, PidsLimit: DefaultPidsLimit, Seccomp: SeccompDefault},
	{Name: ProfileRestrictive, ReadOnlyRoot: true,
		MemoryMB: 256, CPUPercent: 50, PidsLimit: 256, Seccomp: SeccompStrict},
}

// ProfileNames lists the known profiles.
func ProfileNames() []string {
	names := make([]string, len(profiles))
	for i, p := range profiles {
		names[i] = p.Name
	}
	return names
}

// LookupProfile returns the named profile ("" means the default).
func LookupProfile(name string) (Profile, error) {
	if name == "" {
		name = DefaultProfile
	}
	i := slices.IndexFunc(profiles, func(p Profile) bool { return p.Name == name })
	if i < 0 {
		return Profile{}, fmt.Errorf("unknown profile %q (want one of %v): %w", name, ProfileNames(), errdefs.ErrInvalidArgument)
	}
	return profiles[i], nil
}

// Config returns the profile's defaults as a Config.
func (p Profile) Config() Config {
	return Config{
		Image:        DefaultImage,
		Profile:      p.Name,
		VCPUs:        DefaultVCPUs,
		MemoryMB:     p.MemoryMB,
		PidsLimit:    p.PidsLimit,
		CPUPercent:   p.CPUPercent,
		Network:      NetworkNone,
		ReadOnlyRoot: p.ReadOnlyRoot,
		Seccomp:      p.Seccomp,
		AllowPtrace:  p.AllowPtrace,
	}
}
