package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "dev", "my_box-1", "A9", strings.Repeat("x", 63)} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("%q rejected: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "_a", "a_", "a.b", "a b", "ä", strings.Repeat("x", 64), "a/b", "..", "a\x00"} {
		err := ValidateName(bad)
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q accepted (err %v)", bad, err)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: multi-line error", bad)
		}
	}
}

func TestValidatePath(t *testing.T) {
	for _, ok := range []string{"/", "/tmp/x", "/etc/hosts", "/home/u/.ssh/config", "/procfs", "/device", "/tmp/a..b"} {
		if err := ValidatePath(ok); err != nil {
			t.Errorf("%q rejected: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "tmp/x", "/tmp/../etc", "/..", "/tmp/./x", "/proc", "/proc/1/environ", "/sys/x", "/dev/sda",
		"/etc/passwd", "/etc/shadow", "/etc/sudoers", "/etc/sudoers.d/x", "/root/.ssh", "/root/.ssh/id_rsa", "//proc/x", "/a\x00b"} {
		if err := ValidatePath(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q accepted (err %v)", bad, err)
		}
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]PortMapping{
		"8080:80":     {8080, 80, "tcp"},
		"3000":        {0, 3000, "tcp"},
		"5353:53/udp": {5353, 53, "udp"},
		"1:65535/tcp": {1, 65535, "tcp"},
	} {
		got, err := ParsePort(in)
		if err != nil || got != want {
			t.Errorf("ParsePort(%q) = %+v, %v", in, got, err)
		}
		if back, _ := ParsePort(got.String()); back != got {
			t.Errorf("round trip of %q via %q", in, got.String())
		}
	}
	for _, bad := range []string{"", "0", "65536", "a:b", "80:", ":80", "80:80/sctp", "-1", "80:80:80"} {
		if _, err := ParsePort(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParsePort(%q) accepted", bad)
		}
	}
}

func TestResolveProfiles(t *testing.T) {
	c, warn, err := Resolve(Options{})
	if err != nil || c.Profile != ProfileModerate || c.MemoryMB != 512 || c.VCPUs != 1 || c.Network != NetworkNAT || len(warn) != 0 {
		t.Fatalf("default: %+v %v %v", c, warn, err)
	}
	c, _, err = Resolve(Options{Profile: ProfileRestrictive})
	if err != nil || !c.ReadOnlyRoot || c.MemoryMB != 256 || c.Seccomp != SeccompStrict {
		t.Fatalf("restrictive: %+v %v", c, err)
	}
	mem, off := 1024, false
	c, warn, err = Resolve(Options{Profile: ProfilePermissive, MemoryMB: &mem, Network: &off, Cwd: "/tmp", HostEnv: []string{"LANG=C.UTF-8", "AWS_SECRET_ACCESS_KEY=x"}})
	if err != nil || c.MemoryMB != 1024 || c.WorkDir != WorkspaceDir || len(warn) != 0 {
		t.Fatalf("permissive override: %+v %v %v", c, warn, err)
	}
	if strings.Contains(strings.Join(c.Env, " "), "AWS_SECRET") || !strings.Contains(strings.Join(c.Env, " "), "LANG=C.UTF-8") {
		t.Errorf("pass-env leaked or dropped: %v", c.Env)
	}
	// Without a network path, a profile's network falls back to loopback
	// with a warning; asking for it fails.
	noPath := fmt.Errorf("no network path here: %w", errdefs.ErrUnavailable)
	if c, warn, _ := Resolve(Options{Profile: ProfileModerate, NetworkUnavailable: noPath}); len(warn) != 1 || c.Network != NetworkNone {
		t.Errorf("network profile without a network path: %v, %v", c.Network, warn)
	}
	on := true
	if _, _, err := Resolve(Options{Network: &on, NetworkUnavailable: noPath}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("explicit --network without a network path: %v, want unavailable", err)
	}
	rules := netpolicy.Rules{AllowDomains: []string{"example.com"}}
	if _, _, err := Resolve(Options{Profile: ProfileRestrictive, Egress: rules, NetworkUnavailable: noPath}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("rules without a network path: %v, want unavailable", err)
	}
	// Rules ask for network, also under a profile without it; preset and
	// explicit rules add up.
	c, _, err = Resolve(Options{Profile: ProfileRestrictive, Egress: rules, NetworkPreset: "claude"})
	if err != nil || c.Network != NetworkNAT || !c.Egress.AllowlistOnly || !slices.Contains(c.Egress.AllowDomains, "example.com") || !slices.Contains(c.Egress.AllowDomains, "api.anthropic.com") {
		t.Errorf("rules and preset: %+v, %v", c.Egress, err)
	}
	off = false
	if _, _, err := Resolve(Options{Network: &off, Egress: rules}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("rules with --no-network: %v", err)
	}
	if _, _, err := Resolve(Options{Egress: netpolicy.Rules{AllowCIDRs: []string{"nonsense"}}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("a bad rule: %v", err)
	}
	if _, _, err := Resolve(Options{NetworkPreset: "nobody"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unknown preset: %v", err)
	}
	if _, _, err := Resolve(Options{Profile: "paranoid"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unknown profile: %v", err)
	}
	bad := 0
	if _, _, err := Resolve(Options{VCPUs: &bad}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("0 vcpus: %v", err)
	}
	if _, _, err := Resolve(Options{Env: []string{"NOEQUALS"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad env: %v", err)
	}
}

func TestLifecycleTable(t *testing.T) {
	if err := Check("x", StatusRunning, OpStart); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Error("start while running allowed")
	}
	if err := Check("x", StatusStopped, OpExec); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Error("exec while stopped allowed")
	}
	for _, s := range []Status{StatusCreated, StatusRunning, StatusStopped} {
		if Check("x", s, OpRemove) != nil || Check("x", s, OpStop) != nil {
			t.Errorf("remove/stop refused in %s", s)
		}
	}
}

type fakeBackend struct {
	t   Type
	iso Isolation
	err error
}

func (f fakeBackend) Type() Type                  { return f.t }
func (f fakeBackend) Isolation() Isolation        { return f.iso }
func (f fakeBackend) Probe(context.Context) error { return f.err }
func (fakeBackend) Start(context.Context, *Spec) (*Runtime, error) {
	return nil, errdefs.ErrNotImplemented
}
func (fakeBackend) Alive(context.Context, *Spec, *Runtime) bool { return false }
func (fakeBackend) Dial(context.Context, *Spec, *Runtime) (net.Conn, error) {
	return nil, errdefs.ErrNotImplemented
}
func (fakeBackend) Stop(context.Context, *Spec, *Runtime) error { return nil }
func (fakeBackend) Remove(context.Context, *Spec) error         { return nil }

func TestRegistryDetect(t *testing.T) {
	vm := fakeBackend{MicroVM, IsolationVM, errors.New("no kvm: " + errdefs.ErrUnavailable.Error())}
	nat := fakeBackend{Native, IsolationNative, nil}
	r := NewRegistry(nat, vm)
	b, choices, err := r.Detect(t.Context())
	if err != nil || b.Type() != Native {
		t.Fatalf("detect: %v %v", b, err)
	}
	if choices[0].Type != MicroVM || choices[0].Err == nil {
		t.Errorf("strongest choice should be the unusable microvm, explained: %+v", choices[0])
	}
	if got, err := r.Get("qemu"); err != nil || got.Type() != MicroVM {
		t.Errorf("alias qemu: %v %v", got, err)
	}
	if _, err := r.Get("docker"); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("unbuilt backend: %v", err)
	}
	if _, err := r.Get("bogus"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unknown backend: %v", err)
	}
	if _, _, err := NewRegistry(vm).Detect(t.Context()); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("nothing usable: %v", err)
	}
}
