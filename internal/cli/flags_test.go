package cli

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/testutil"

	"github.com/spf13/cobra"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// resolveFlags parses args as `create` would and resolves the config.
func resolveFlags(t *testing.T, env map[string]string, args ...string) (sandbox.Config, string, error) {
	t.Helper()
	var stderr bytes.Buffer
	a := newApp(nil, &bytes.Buffer{}, &stderr)
	if _, ok := env["AGENTKERNEL_SERVER"]; !ok {
		// No network path unless a test gives one: the host's own
		// installation must not decide.
		env = maps.Clone(env)
		if env == nil {
			env = map[string]string{}
		}
		env["AGENTKERNEL_SERVER"] = "/nonexistent/agentkernel-server"
	}
	a.getenv = func(k string) string { return env[k] }
	a.environ = func() []string {
		var kv []string
		for k, v := range env {
			kv = append(kv, k+"="+v)
		}
		slices.Sort(kv)
		return kv
	}
	var sf sandboxFlags
	cmd := &cobra.Command{Use: "test"}
	sf.register(cmd.Flags())
	if err := cmd.Flags().Parse(args); err != nil {
		return sandbox.Config{}, "", err
	}
	cfg, err := sf.config(cmd, a)
	return cfg, stderr.String(), err
}

func TestFlagsDefaults(t *testing.T) {
	cfg, warn, err := resolveFlags(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if warn != "" {
		t.Errorf("default profile warned: %q", warn)
	}
	want, _ := sandbox.LookupProfile(sandbox.DefaultProfile)
	if cfg.Profile != want.Name || cfg.Image != sandbox.DefaultImage || cfg.MemoryMB != want.MemoryMB ||
		cfg.VCPUs != sandbox.DefaultVCPUs || cfg.PidsLimit != want.PidsLimit || cfg.Network != sandbox.NetworkNone {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestFlagsOverrideProfile(t *testing.T) {
	cfg, _, err := resolveFlags(t, nil, "-p", "restrictive", "--memory", "1g", "--cpus", "2",
		"--pids-limit", "64", "--read-only=false", "-i", "host", "-w", "/tmp", "-u", "1000:1000", "--ttl", "90")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Profile != "restrictive" || cfg.MemoryMB != 1024 || cfg.VCPUs != 2 || cfg.PidsLimit != 64 ||
		cfg.ReadOnlyRoot || cfg.WorkDir != "/tmp" || cfg.User != "1000:1000" || cfg.TTL != 90*time.Second {
		t.Errorf("overrides not applied: %+v", cfg)
	}
	if cfg.Seccomp != sandbox.SeccompStrict || cfg.CPUPercent != 50 {
		t.Errorf("profile values lost: %+v", cfg)
	}
	cfg, _, err = resolveFlags(t, nil, "-p", "restrictive")
	if err != nil || !cfg.ReadOnlyRoot || cfg.MemoryMB != 256 {
		t.Errorf("restrictive defaults: %+v, %v", cfg, err)
	}
	cfg, _, err = resolveFlags(t, nil, "--read-only")
	if err != nil || !cfg.ReadOnlyRoot {
		t.Errorf("--read-only: %+v, %v", cfg, err)
	}
}

func TestFlagsProfileNetworkWarning(t *testing.T) {
	cfg, warn, err := resolveFlags(t, map[string]string{"HOME": t.TempDir()}, "-p", "permissive")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Network != sandbox.NetworkNone {
		t.Errorf("network %q, want none", cfg.Network)
	}
	if !strings.Contains(warn, "agentkernel: warning: ") || !strings.Contains(warn, "loopback only") {
		t.Errorf("no fallback warning: %q", warn)
	}
	// --no-network silences it.
	_, warn, err = resolveFlags(t, map[string]string{"HOME": t.TempDir()}, "-p", "permissive", "--no-network")
	if err != nil || warn != "" {
		t.Errorf("--no-network: %q, %v", warn, err)
	}
	if _, _, err := resolveFlags(t, nil, "--network"); !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "agentkernel-server") {
		t.Errorf("--network without a network path: %v", err)
	}
}

func TestFlagsEgressRules(t *testing.T) {
	testutil.RequireLinux(t)
	if _, err := os.Stat("/dev/net/tun"); err != nil || os.Geteuid() != 0 {
		t.Skip("needs /dev/net/tun and root for a network path")
	}
	// Any executable stands in for agentkernel-server: nothing runs here.
	withPath := map[string]string{"AGENTKERNEL_SERVER": "/bin/true"}
	cfg, _, err := resolveFlags(t, withPath, "-p", "restrictive", "--allow-domain", "*.github.com", "--deny-domain", "evil.test",
		"--allow-cidr", "10.1.0.0/16", "--allowlist-only", "--network-preset", "claude", "--add-host", "db.test:10.1.2.3", "--publish", "8080:80", "--publish", "53/udp")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Network != sandbox.NetworkNAT || !cfg.Egress.AllowlistOnly || !slices.Contains(cfg.Egress.AllowDomains, "*.github.com") ||
		!slices.Contains(cfg.Egress.AllowDomains, "api.anthropic.com") || cfg.Egress.DenyDomains[0] != "evil.test" ||
		cfg.Egress.AllowCIDRs[0] != "10.1.0.0/16" || cfg.Hosts["db.test"][0].String() != "10.1.2.3" {
		t.Errorf("rules: %+v", cfg)
	}
	if len(cfg.Ports) != 2 || cfg.Ports[0] != (sandbox.PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}) ||
		cfg.Ports[1] != (sandbox.PortMapping{ContainerPort: 53, Protocol: "udp"}) {
		t.Errorf("ports: %+v", cfg.Ports)
	}
	for _, args := range [][]string{
		{"--allow-domain", "bad domain"},
		{"--allow-cidr", "10.0.0.0/40"},
		{"--add-host", "nocolon"},
		{"--add-host", "name:not-an-ip"},
		{"--network-preset", "nobody"},
		{"--no-network", "--allow-domain", "a.test"},
		{"--no-network", "--publish", "80"},
	} {
		if _, _, err := resolveFlags(t, withPath, args...); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

func TestFlagsMountCwd(t *testing.T) {
	cfg, _, err := resolveFlags(t, nil, "--mount-cwd")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Mounts) != 1 || cfg.Mounts[0].Target != sandbox.WorkspaceDir || cfg.WorkDir != sandbox.WorkspaceDir {
		t.Errorf("--mount-cwd: %+v", cfg)
	}
	cfg, _, err = resolveFlags(t, nil, "--mount-cwd", "-w", "/tmp")
	if err != nil || cfg.WorkDir != "/tmp" {
		t.Errorf("-w after --mount-cwd: %+v, %v", cfg, err)
	}
	dir := t.TempDir()
	cfg, _, err = resolveFlags(t, nil, "-v", dir+":/data:ro", "-v", dir+":/rw")
	if err != nil {
		t.Fatal(err)
	}
	want := []sandbox.Mount{{Source: dir, Target: "/data", ReadOnly: true}, {Source: dir, Target: "/rw"}}
	if !slices.Equal(cfg.Mounts, want) {
		t.Errorf("volumes: %+v, want %+v", cfg.Mounts, want)
	}
	if _, _, err := resolveFlags(t, nil, "-v", dir+":/proc/x"); err == nil {
		t.Error("a volume over /proc was accepted")
	}
}

func TestFlagsEnv(t *testing.T) {
	host := map[string]string{"FROM_HOST": "h v", "EMPTY": ""}
	cfg, _, err := resolveFlags(t, host, "-e", "A=1", "-e", "FROM_HOST", "-e", "UNSET", "-e", "B=x=y", "-e", "C=")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", "FROM_HOST=h v", "B=x=y", "C="}
	if !slices.Equal(cfg.Env, want) {
		t.Errorf("env %q, want %q", cfg.Env, want)
	}
	// A comma is part of the value, not a separator.
	cfg, _, _ = resolveFlags(t, nil, "-e", "LIST=a,b")
	if !slices.Equal(cfg.Env, []string{"LIST=a,b"}) {
		t.Errorf("env with comma: %q", cfg.Env)
	}
	// The moderate profile passes no host environment.
	cfg, _, _ = resolveFlags(t, map[string]string{"TERM": "xterm", "SECRET": "s"})
	if len(cfg.Env) != 0 {
		t.Errorf("moderate passed host env: %q", cfg.Env)
	}
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int{
		"512": 512, "512m": 512, "512M": 512, "512MB": 512, "512MiB": 512, "1g": 1024, "1G": 1024,
		"1.5g": 1536, "2GiB": 2048, "1t": 1 << 20, "2048k": 2, " 64 ": 64,
	} {
		got, err := parseMemory(in)
		if err != nil || got != want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "-1", "0", "1x", "1.2.3", "0.1k", "inf", "1e400"} {
		if got, err := parseMemory(in); err == nil {
			t.Errorf("parseMemory(%q) = %d, want an error", in, got)
		}
	}
}

func TestDurationValue(t *testing.T) {
	for in, want := range map[string]time.Duration{"30": 30 * time.Second, "1.5": 1500 * time.Millisecond, "2m": 2 * time.Minute, "1h30m": 90 * time.Minute} {
		var d durationValue
		if err := d.Set(in); err != nil || time.Duration(d) != want {
			t.Errorf("Set(%q) = %v, %v; want %v", in, time.Duration(d), err, want)
		}
	}
	for _, in := range []string{"-1", "-1s", "soon", ""} {
		var d durationValue
		if err := d.Set(in); err == nil {
			t.Errorf("Set(%q) accepted", in)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		pos     []string
		command []string
		tty     bool
	}{
		{[]string{"dev", "ls", "-la"}, []string{"dev"}, []string{"ls", "-la"}, false},
		{[]string{"dev", "--", "ls", "-la"}, []string{"dev"}, []string{"ls", "-la"}, false},
		{[]string{"-t", "dev", "--", "tty"}, []string{"dev"}, []string{"tty"}, true},
		{[]string{"dev", "-t", "--", "tty"}, []string{"dev"}, []string{"tty"}, true},
		{[]string{"--", "dev", "-t"}, []string{"dev"}, []string{"-t"}, false},
		{[]string{"dev", "git", "diff", "--", "file"}, []string{"dev"}, []string{"git", "diff", "--", "file"}, false},
		{[]string{"dev", "--", "--", "x"}, []string{"dev"}, []string{"--", "x"}, false},
		{[]string{"dev"}, []string{"dev"}, []string{}, false},
	} {
		var tty bool
		var gotPos, gotCmd []string
		cmd := &cobra.Command{
			Use:  "exec NAME -- COMMAND",
			Args: cobra.ArbitraryArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				var err error
				gotPos, gotCmd, err = splitCommand(cmd, args, 1)
				return err
			},
		}
		cmd.Flags().SetInterspersed(false)
		cmd.Flags().BoolVarP(&tty, "tty", "t", false, "")
		cmd.SetArgs(tc.args)
		if err := cmd.Execute(); err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !slices.Equal(gotPos, tc.pos) || !slices.Equal(gotCmd, tc.command) || tty != tc.tty {
			t.Errorf("%q: pos %q command %q tty %v; want %q %q %v", tc.args, gotPos, gotCmd, tty, tc.pos, tc.command, tc.tty)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"TERM": 15, "SIGKILL": 9, "int": 2, "9": 9, "hup": 1} {
		if got, err := parseSignal(in); err != nil || got != want {
			t.Errorf("parseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "65", "NOPE", "-9"} {
		if _, err := parseSignal(in); err == nil {
			t.Errorf("parseSignal(%q) accepted", in)
		}
	}
}

func TestFlagsEgressFromProjectConfig(t *testing.T) {
	testutil.RequireLinux(t)
	if _, err := os.Stat("/dev/net/tun"); err != nil || os.Geteuid() != 0 {
		t.Skip("needs /dev/net/tun and root for a network path")
	}
	dir := t.TempDir()
	t.Chdir(dir)
	os.WriteFile("agentkernel.toml", []byte(`
[sandbox]
name = "x"
[security.domains]
allow = ["*.pypi.org"]
block = ["evil.test"]
allowlist_only = true
[network]
allow_cidrs = ["10.5.0.0/16"]
vsock_cid = 3 # the Rust agentkernel's; ignored
`), 0o644)
	cfg, _, err := resolveFlags(t, map[string]string{"AGENTKERNEL_SERVER": "/bin/true"}, "--allow-domain", "api.github.com")
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Egress
	if cfg.Network != sandbox.NetworkNAT || !e.AllowlistOnly || !slices.Equal(e.AllowDomains, []string{"*.pypi.org", "api.github.com"}) ||
		!slices.Equal(e.DenyDomains, []string{"evil.test"}) || !slices.Equal(e.AllowCIDRs, []string{"10.5.0.0/16"}) {
		t.Errorf("rules from agentkernel.toml and flags: %+v", e)
	}
	os.WriteFile("agentkernel.toml", []byte("[security.domains]\nallow = [\"not a domain\"]\n"), 0o644)
	if _, _, err := resolveFlags(t, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("a bad rule in agentkernel.toml: %v", err)
	}
}
