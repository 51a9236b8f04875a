package netpolicy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

func mustCompile(t *testing.T, r Rules) *Policy {
	t.Helper()
	p, err := Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func isHost(a netip.Addr) bool {
	return a == netip.MustParseAddr("203.0.113.9") || a == netip.MustParseAddr("8.8.4.4")
}

func dest(addr string, name string, resolved ...string) Dest {
	return Dest{Protocol: "tcp", Addr: netip.MustParseAddrPort(addr), Name: name, Resolved: resolved}
}

func TestBuiltinRefusalsHoldWhateverTheRules(t *testing.T) {
	// Even rules that allow everything cannot open these.
	p := mustCompile(t, Rules{AllowCIDRs: []string{"0.0.0.0/0", "::/0"}})
	for _, addr := range []string{
		"127.0.0.1:80", "[::1]:80", "127.9.9.9:22", "[::ffff:127.0.0.1]:80", // loopback, also v4-mapped
		"169.254.169.254:80", "[fd00:ec2::254]:80", "169.254.1.1:80", "[fe80::1]:80", // metadata, link-local
		"0.0.0.0:80", "[::]:80", "224.0.0.1:5353", "255.255.255.255:67", "240.0.0.1:80",
		"8.8.4.4:53", // an address of the host
	} {
		if v := p.Check(dest(addr, ""), isHost); v.Allow || !strings.HasPrefix(v.Rule, "builtin:") {
			t.Errorf("%s: %+v, want a builtin refusal", addr, v)
		}
	}
}

func TestPrivateRangesNeedAnAllowCIDR(t *testing.T) {
	p := mustCompile(t, Rules{})
	for _, addr := range []string{"10.1.2.3:80", "172.20.0.1:80", "192.168.1.1:443", "100.64.0.1:80", "[fd12::1]:80"} {
		if v := p.Check(dest(addr, ""), isHost); v.Allow {
			t.Errorf("%s allowed by default", addr)
		}
	}
	p = mustCompile(t, Rules{AllowCIDRs: []string{"10.1.0.0/16"}})
	if v := p.Check(dest("10.1.2.3:80", ""), isHost); !v.Allow || v.Rule != "allow-cidr" {
		t.Errorf("allowed CIDR: %+v", v)
	}
	if v := p.Check(dest("10.2.0.1:80", ""), isHost); v.Allow {
		t.Errorf("outside the allowed CIDR: %+v", v)
	}
	if v := p.Check(dest("93.184.216.34:443", ""), isHost); !v.Allow {
		t.Errorf("a public address without rules: %+v", v)
	}
}

func TestDenyRules(t *testing.T) {
	p := mustCompile(t, Rules{
		DenyDomains: []string{"*.evil.test", "tracker.test"},
		DenyCIDRs:   []string{"93.184.0.0/16"},
		DenyPorts:   []string{"25", "6000-6100/udp"},
	})
	cases := []struct {
		d    Dest
		rule string
	}{
		{dest("93.184.216.34:443", ""), "deny-cidr 93.184.0.0/16"},
		{dest("1.1.1.1:25", ""), "deny-port 25"},
		{Dest{Protocol: "udp", Addr: netip.MustParseAddrPort("1.1.1.1:6050")}, "deny-port 6000-6100/udp"},
		{dest("1.1.1.1:443", "evil.test"), "deny-domain *.evil.test"},
		{dest("1.1.1.1:443", "a.b.EVIL.test."), "deny-domain *.evil.test"},
		{dest("1.1.1.1:443", "", "tracker.test"), "deny-domain tracker.test (by address)"},
	}
	for _, c := range cases {
		if v := p.Check(c.d, isHost); v.Allow || v.Rule != c.rule {
			t.Errorf("%+v: %+v, want refused by %q", c.d, v, c.rule)
		}
	}
	if v := p.Check(Dest{Protocol: "tcp", Addr: netip.MustParseAddrPort("1.1.1.1:6050")}, isHost); !v.Allow {
		t.Errorf("a udp-only port rule refused tcp: %+v", v)
	}
	if v := p.Check(dest("1.1.1.1:443", "notevil.test"), isHost); !v.Allow {
		t.Errorf("*.evil.test matched notevil.test: %+v", v)
	}
}

func TestAllowlistOnlyBindsNamesToAddresses(t *testing.T) {
	p := mustCompile(t, Rules{AllowlistOnly: true, AllowDomains: []string{"*.github.com", "pypi.org"}, AllowCIDRs: []string{"10.9.0.0/16"}})
	ok := []Dest{
		dest("140.82.112.3:443", "api.github.com", "api.github.com"),
		dest("140.82.112.3:443", "", "github.com"),        // no SNI: the address an allowed name resolved to
		dest("151.101.0.223:443", "PYPI.org", "pypi.org"), // names compare normalised
		dest("10.9.3.4:5432", ""),                         // an allowed network needs no name
	}
	for _, d := range ok {
		if v := p.Check(d, isHost); !v.Allow {
			t.Errorf("%+v refused: %s", d, v.Rule)
		}
	}
	refused := []Dest{
		dest("140.82.112.3:443", ""),                                 // nobody resolved it
		dest("1.2.3.4:443", "api.github.com"),                        // allowed SNI toward another address
		dest("140.82.112.3:443", "evil.test", "api.github.com"),      // denied SNI toward an allowed address
		dest("140.82.112.3:443", "files.pypi.org", "files.pypi.org"), // pypi.org does not cover subdomains
		dest("140.82.112.3:443", "api.github.com", "raw.github.com"), // SNI differs from what was resolved here
	}
	for _, d := range refused {
		if v := p.Check(d, isHost); v.Allow {
			t.Errorf("%+v allowed by %s", d, v.Rule)
		}
	}
}

func TestLookup(t *testing.T) {
	open := mustCompile(t, Rules{DenyDomains: []string{"*.evil.test"}})
	closed := mustCompile(t, Rules{AllowlistOnly: true, AllowDomains: []string{"*.github.com"}, DenyDomains: []string{"gist.github.com"}})
	for _, c := range []struct {
		p     *Policy
		name  string
		allow bool
	}{
		{open, "example.com", true},
		{open, "x.evil.test", false},
		{open, "metadata.google.internal.", false},
		{closed, "github.com", true},
		{closed, "api.github.com", true},
		{closed, "gist.github.com", false}, // deny beats allow
		{closed, "example.com", false},
		{closed, "github.com.attacker.test", false},
	} {
		if v := c.p.Lookup(c.name); v.Allow != c.allow {
			t.Errorf("Lookup(%q) = %+v, want allow=%v", c.name, v, c.allow)
		}
	}
}

func TestCompileRefusesBadRules(t *testing.T) {
	for _, r := range []Rules{
		{AllowDomains: []string{"exa mple.com"}},
		{AllowDomains: []string{"*"}},
		{DenyDomains: []string{"a.*.com"}},
		{DenyDomains: []string{"-bad.com"}},
		{AllowDomains: []string{strings.Repeat("a", 64) + ".com"}},
		{AllowCIDRs: []string{"10.0.0.0/33"}},
		{DenyCIDRs: []string{"example.com"}},
		{AllowPorts: []string{"0"}},
		{AllowPorts: []string{"80-20"}},
		{DenyPorts: []string{"53/icmp"}},
		{DenyPorts: []string{"70000"}},
	} {
		if _, err := Compile(r); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Compile(%+v) = %v, want invalid argument", r, err)
		}
	}
}

func TestMergeKeepsEveryRule(t *testing.T) {
	a := Rules{AllowDomains: []string{"a.test"}, DenyCIDRs: []string{"1.0.0.0/8"}}
	b := Rules{AllowDomains: []string{"a.test", "b.test"}, AllowlistOnly: true, DenyPorts: []string{"25"}}
	m := a.Merge(b)
	if !m.AllowlistOnly || len(m.AllowDomains) != 2 || len(m.DenyCIDRs) != 1 || len(m.DenyPorts) != 1 {
		t.Fatalf("merged %+v", m)
	}
	if !(Rules{}).IsZero() || m.IsZero() {
		t.Fatal("IsZero")
	}
}

func TestPresets(t *testing.T) {
	for _, name := range PresetNames() {
		r, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		p := mustCompile(t, r)
		if v := p.Lookup("api.github.com"); !v.Allow {
			t.Errorf("preset %s refuses GitHub", name)
		}
		if v := p.Lookup("example.com"); v.Allow {
			t.Errorf("preset %s allows anything", name)
		}
	}
	if r, _ := Preset("claude"); !mustCompile(t, r).Lookup("api.anthropic.com").Allow {
		t.Error("claude preset refuses its API")
	}
	if _, err := Preset("nobody"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unknown preset: %v", err)
	}
}

func FuzzPattern(f *testing.F) {
	for _, s := range []string{"example.com", "*.example.com", "A.B.", "*.", "*..x", "x_y.z", "-a.b", "xn--bcher-kva.example"} {
		f.Add(s, "sub.example.com")
	}
	f.Fuzz(func(t *testing.T, pat, name string) {
		p, err := parsePattern(pat)
		if err != nil {
			return
		}
		if !p.match(p.name) {
			t.Fatalf("%q does not match its own name %q", pat, p.name)
		}
		if p.sub && !p.match("x."+p.name) {
			t.Fatalf("%q does not match a name under it", pat)
		}
		n := NormalizeName(name)
		if p.match(n) && n != p.name && !(p.sub && strings.HasSuffix(n, "."+p.name)) {
			t.Fatalf("%q matched %q", pat, n)
		}
		if _, err := parsePattern(p.text); err != nil {
			t.Fatalf("normalised pattern %q does not parse again: %v", p.text, err)
		}
	})
}
