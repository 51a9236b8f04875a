package cli

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/detect"

	"github.com/agentkernel-go/agentkernel/internal/setup"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// sandboxFlags are the flags that configure a new sandbox (run, create).
type sandboxFlags struct {
	name      string
	image     string
	profile   string
	backend   string
	network   bool
	noNetwork bool
	memory    string
	cpus      int
	pidsLimit int
	readOnly  bool
	mountCwd  bool
	mountHome bool
	volumes   []string
	publish   []string
	env       []string
	workdir   string
	user      string
	ttl       durationValue
	egress    egressFlags
	preset    string
	addHosts  []string
}

// egressFlags are the egress rule flags of create, run and sandbox network.
type egressFlags struct {
	allowDomains, denyDomains []string
	allowCIDRs, denyCIDRs     []string
	allowPorts, denyPorts     []string
	allowlistOnly             bool
}

func (e *egressFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&e.allowDomains, "allow-domain", nil, "allow a domain: example.com, or *.example.com for it and every name under it (repeatable)")
	fs.StringArrayVar(&e.denyDomains, "deny-domain", nil, "deny a domain: it does not resolve and is not reachable, also by address (repeatable)")
	fs.StringArrayVar(&e.allowCIDRs, "allow-cidr", nil, "allow a network, private ones included: 10.0.0.0/8, fd00::/8 (repeatable)")
	fs.StringArrayVar(&e.denyCIDRs, "deny-cidr", nil, "deny a network (repeatable)")
	fs.StringArrayVar(&e.allowPorts, "allow-port", nil, "allow only these destination ports: 443, 8000-8100, 53/udp (repeatable)")
	fs.StringArrayVar(&e.denyPorts, "deny-port", nil, "deny destination ports (repeatable)")
	fs.BoolVar(&e.allowlistOnly, "allowlist-only", false, "allow only the allowed domains and networks")
}

func (e *egressFlags) rules() netpolicy.Rules {
	return netpolicy.Rules{
		AllowDomains: e.allowDomains, DenyDomains: e.denyDomains,
		AllowCIDRs: e.allowCIDRs, DenyCIDRs: e.denyCIDRs,
		AllowPorts: e.allowPorts, DenyPorts: e.denyPorts,
		AllowlistOnly: e.allowlistOnly,
	}
}

func (f *sandboxFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.name, "name", "", "sandbox name (default: generated)")
	fs.StringVarP(&f.image, "image", "i", "", `image: "host" (a read-only view of this host's userland; the default), an OCI reference such as python:3.12-alpine, an image ID, or "auto" (chosen from the command and project files)`)
	fs.StringVarP(&f.profile, "profile", "p", "", "security profile: permissive, moderate (default) or restrictive")
	fs.StringVarP(&f.backend, "backend", "B", "", "backend: native, microvm, docker, gvisor, ... (default: $AGENTKERNEL_BACKEND, else the strongest usable one)")
	fs.BoolVar(&f.network, "network", false, "give the sandbox network access, under its egress rules (the default of the permissive and moderate profiles)")
	fs.BoolVar(&f.noNetwork, "no-network", false, "no network access: loopback only")
	fs.StringVar(&f.memory, "memory", "", "memory limit: MB, or with a unit (512m, 2g)")
	fs.IntVar(&f.cpus, "cpus", 0, "number of vCPUs")
	fs.IntVar(&f.pidsLimit, "pids-limit", 0, "maximum number of processes")
	fs.BoolVar(&f.readOnly, "read-only", false, "make the sandbox's root filesystem read-only (--read-only=false: writable)")
	fs.BoolVar(&f.mountCwd, "mount-cwd", false, "mount the current directory at "+sandbox.WorkspaceDir+" and start commands there")
	fs.BoolVar(&f.mountHome, "mount-home", false, "mount your home directory read-only at "+sandbox.HomeMountDir)
	fs.StringArrayVarP(&f.volumes, "volume", "v", nil, "mount a host path: HOST:SANDBOX[:ro] (repeatable)")
	fs.StringArrayVar(&f.publish, "publish", nil, "publish a port on the host's 127.0.0.1: HOST:SANDBOX[/udp], or SANDBOX (a free host port) (repeatable)")
	fs.StringVar(&f.preset, "network-preset", "", "egress rules of an agent: "+strings.Join(netpolicy.PresetNames(), ", ")+" (its API, package registries and GitHub only)")
	fs.StringArrayVar(&f.addHosts, "add-host", nil, "make a name resolve to an address in the sandbox: NAME:ADDRESS (repeatable)")
	f.egress.register(fs)
	fs.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable: KEY=VALUE, or KEY to pass it from here (repeatable)")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "working directory of commands (absolute)")
	fs.StringVarP(&f.user, "user", "u", "", "user commands run as (name, uid or uid:gid; default root of the sandbox)")
	fs.Var(&f.ttl, "ttl", "remove the sandbox this long after creation (e.g. 30m, 2h; gc removes it)")
}

// options turns the flags into sandbox options. It validates everything it
// can without touching the host's sandboxes.
func (f *sandboxFlags) options(fs *pflag.FlagSet, a *app) (sandbox.Options, error) {
	var o sandbox.Options
	if f.name != "" {
		if err := sandbox.ValidateName(f.name); err != nil {
			return o, err
		}
	}
	if f.backend != "" {
		if _, err := sandbox.ParseType(f.backend); err != nil {
			return o, err
		}
	}
	o.Profile = f.profile
	o.Image = f.image
	if fs.Changed("network") && fs.Changed("no-network") && f.network == f.noNetwork {
		return o, usagef("--network and --no-network contradict each other")
	}
	if fs.Changed("network") {
		o.Network = ptr(f.network)
	}
	if fs.Changed("no-network") {
		o.Network = ptr(!f.noNetwork)
	}
	if fs.Changed("memory") {
		mb, err := parseMemory(f.memory)
		if err != nil {
			return o, err
		}
		o.MemoryMB = &mb
	}
	if fs.Changed("cpus") {
		o.VCPUs = ptr(f.cpus)
	}
	if fs.Changed("pids-limit") {
		o.PidsLimit = ptr(f.pidsLimit)
	}
	if fs.Changed("read-only") {
		o.ReadOnlyRoot = ptr(f.readOnly)
	}
	if fs.Changed("mount-cwd") {
		o.MountCwd = ptr(f.mountCwd)
	}
	if fs.Changed("mount-home") {
		o.MountHome = ptr(f.mountHome)
	}
	cwd, err := os.Getwd()
	if err == nil {
		o.Cwd = cwd
	}
	o.Home = a.getenv("HOME")
	if o.Home == "" {
		o.Home, _ = os.UserHomeDir()
	}
	o.HostEnv = a.environ()
	for _, v := range f.volumes {
		m, err := parseVolume(v, cwd)
		if err != nil {
			return o, err
		}
		o.Mounts = append(o.Mounts, m)
	}
	for _, p := range f.publish {
		pm, err := sandbox.ParsePort(p)
		if err != nil {
			return o, err
		}
		o.Ports = append(o.Ports, pm)
	}
	// The project's agentkernel.toml rules come first; flags add to them.
	proj, err := detect.LoadConfig(cwd)
	if err != nil {
		return o, err
	}
	fileRules, filePreset := proj.Egress()
	o.Egress, o.NetworkPreset = fileRules.Merge(f.egress.rules()), f.preset
	if o.NetworkPreset == "" {
		o.NetworkPreset = filePreset
	}
	for _, h := range f.addHosts {
		name, addr, ok := strings.Cut(h, ":")
		ip, err := netip.ParseAddr(addr)
		if !ok || err != nil || name == "" {
			return o, usagef("--add-host %q: want NAME:ADDRESS", h)
		}
		if o.Hosts == nil {
			o.Hosts = map[string][]netip.Addr{}
		}
		o.Hosts[netpolicy.NormalizeName(name)] = append(o.Hosts[netpolicy.NormalizeName(name)], ip.Unmap())
	}
	if o.Env, err = parseEnv(f.env, a.getenv); err != nil {
		return o, err
	}
	if f.workdir != "" && !strings.HasPrefix(f.workdir, "/") {
		return o, usagef("workdir %q must be an absolute path", f.workdir)
	}
	o.WorkDir = f.workdir
	o.User = f.user
	o.TTL = time.Duration(f.ttl)
	return o, nil
}

// config turns the flags into a sandbox configuration (the profile with the
// flags applied), printing the profile's warnings.
func (f *sandboxFlags) config(cmd *cobra.Command, a *app) (sandbox.Config, error) {
	o, err := f.options(cmd.Flags(), a)
	if err != nil {
		return sandbox.Config{}, err
	}
	o.NetworkUnavailable = setup.NetworkUnavailable(a.getenv)
	cfg, warnings, err := sandbox.Resolve(o)
	if err != nil {
		return sandbox.Config{}, err
	}
	for _, w := range warnings {
		a.warnf("%s", w)
	}
	return cfg, nil
}

func ptr[T any](v T) *T { return &v }

// parseMemory reads a memory size in MB: "512", "512m", "512MB", "1.5g", "2GiB".
func parseMemory(s string) (int, error) {
	bad := func() (int, error) {
		return 0, usagef("memory %q: want a size in MB or with a unit, like 512m or 2g", s)
	}
	t := strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) {
		return bad()
	}
	var mult float64
	switch unit {
	case "", "m", "mb", "mi", "mib":
		mult = 1
	case "g", "gb", "gi", "gib":
		mult = 1024
	case "t", "tb", "ti", "tib":
		mult = 1024 * 1024
	case "k", "kb", "ki", "kib":
		mult = 1.0 / 1024
	default:
		return bad()
	}
	mb := math.Round(v * mult)
	if mb < 1 || mb > math.MaxInt32 {
		return bad()
	}
	return int(mb), nil
}

// parseEnv reads -e values: KEY=VALUE as is, KEY alone from the host's
// environment (skipped when the host has no such variable).
func parseEnv(vals []string, getenv func(string) string) ([]string, error) {
	var env []string
	for _, v := range vals {
		k, _, hasValue := strings.Cut(v, "=")
		if k == "" || strings.ContainsAny(k, "\x00") || strings.ContainsAny(v, "\x00") {
			return nil, usagef("environment variable %q: want KEY=VALUE or KEY", v)
		}
		if hasValue {
			env = append(env, v)
			continue
		}
		if val := getenv(k); val != "" {
			env = append(env, k+"="+val)
		}
	}
	return env, nil
}

// parseVolume reads HOST:SANDBOX[:ro|rw]; a relative HOST is taken from cwd.
func parseVolume(s, cwd string) (sandbox.Mount, error) {
	parts := strings.Split(s, ":")
	var m sandbox.Mount
	switch {
	case len(parts) == 3 && (parts[2] == "ro" || parts[2] == "rw"):
		m.ReadOnly = parts[2] == "ro"
	case len(parts) == 2:
	default:
		return m, usagef("volume %q: want HOST:SANDBOX[:ro]", s)
	}
	m.Source, m.Target = parts[0], parts[1]
	if m.Source == "" || m.Target == "" {
		return m, usagef("volume %q: want HOST:SANDBOX[:ro]", s)
	}
	if !filepath.IsAbs(m.Source) {
		m.Source = filepath.Join(cwd, m.Source)
	}
	if err := sandbox.ValidatePath(m.Target); err != nil {
		return m, err
	}
	return m, nil
}

// durationValue is a duration flag that also takes plain seconds ("30").
type durationValue time.Duration

func (d *durationValue) String() string {
	if *d == 0 {
		return ""
	}
	return time.Duration(*d).String()
}

func (d *durationValue) Set(s string) error {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 || n > math.MaxInt64/float64(time.Second) {
			return fmt.Errorf("duration out of range")
		}
		*d = durationValue(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration like 30s, 5m or 1h30m")
	}
	if v < 0 {
		return fmt.Errorf("negative duration")
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) Type() string { return "duration" }

// splitCommand separates a command's leading positional arguments from the
// command to run in the sandbox. Flags stop at the first positional
// argument so that the command's own flags pass through untouched
// ("exec dev ls -la"); flags placed after the positionals must be ended by
// "--" ("exec dev -t -- bash"), and are parsed here.
func splitCommand(cmd *cobra.Command, args []string, npos int) (pos, command []string, err error) {
	if len(args) < npos {
		return nil, nil, usagef("%s: missing arguments (usage: %s)", cmd.CommandPath(), cmd.UseLine())
	}
	if cmd.ArgsLenAtDash() >= 0 {
		// "--" came before any positional ("exec -- dev ls"): the rest is
		// verbatim.
		return args[:npos], args[npos:], nil
	}
	pos, rest := args[:npos], args[npos:]
	if len(rest) > 0 && rest[0] == "--" {
		return pos, rest[1:], nil
	}
	if len(rest) > 0 && len(rest[0]) > 1 && strings.HasPrefix(rest[0], "-") {
		// Flags after the positionals: they need "--" before the command.
		end := -1
		for i, a := range rest {
			if a == "--" {
				end = i
				break
			}
		}
		if end < 0 {
			return nil, nil, usagef("%s: flags after %s must be followed by -- and the command (or put them first)",
				cmd.CommandPath(), strings.Join(pos, " "))
		}
		fs := cmd.Flags()
		fs.SetInterspersed(false)
		if err := fs.Parse(rest[:end]); err != nil {
			return nil, nil, usageError{msg: err.Error()}
		}
		if fs.NArg() > 0 {
			return nil, nil, usagef("%s: unexpected argument %q before --", cmd.CommandPath(), fs.Arg(0))
		}
		return pos, rest[end+1:], nil
	}
	return pos, rest, nil
}
