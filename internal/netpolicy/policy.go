package netpolicy

import (
	"fmt"
	"net/netip"
	"slices"
)

// Policy is compiled Rules. It is immutable: a sandbox whose rules change
// gets a new Policy, and connections decided before keep their verdict.
type Policy struct {
	rules                 Rules
	allow, deny           []pattern
	allowNets, denyNets   []netip.Prefix
	allowPorts, denyPorts []portRule
}

// Compile checks and compiles rules; a bad rule is an invalid-argument
// error naming it.
func Compile(r Rules) (*Policy, error) {
	p := &Policy{rules: r}
	var err error
	if p.allow, err = parseAll(r.AllowDomains, parsePattern); err != nil {
		return nil, err
	}
	if p.deny, err = parseAll(r.DenyDomains, parsePattern); err != nil {
		return nil, err
	}
	if p.allowNets, err = parseAll(r.AllowCIDRs, parseCIDR); err != nil {
		return nil, err
	}
	if p.denyNets, err = parseAll(r.DenyCIDRs, parseCIDR); err != nil {
		return nil, err
	}
	if p.allowPorts, err = parseAll(r.AllowPorts, parsePortRule); err != nil {
		return nil, err
	}
	if p.denyPorts, err = parseAll(r.DenyPorts, parsePortRule); err != nil {
		return nil, err
	}
	return p, nil
}

func parseAll[T any](in []string, parse func(string) (T, error)) ([]T, error) {
	out := make([]T, 0, len(in))
	for _, s := range in {
		v, err := parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Rules returns the rules p was compiled from.
func (p *Policy) Rules() Rules { return p.rules }

// Verdict is a decision and the rule that made it, for the audit log.
type Verdict struct {
	Allow bool   `json:"allow"`
	Rule  string `json:"rule"`
}

func allow(rule string) Verdict                { return Verdict{Allow: true, Rule: rule} }
func deny(format string, a ...any) Verdict     { return Verdict{Rule: fmt.Sprintf(format, a...)} }
func (p *Policy) denied(name string) *pattern  { return matching(p.deny, name) }
func (p *Policy) allowed(name string) *pattern { return matching(p.allow, name) }

func matching(pats []pattern, name string) *pattern {
	for i := range pats {
		if pats[i].match(name) {
			return &pats[i]
		}
	}
	return nil
}

// metadataNames are cloud metadata services' names: never resolved.
var metadataNames = []string{"metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}

// Lookup decides a DNS question for name: a refused name does not resolve,
// whatever its record type.
func (p *Policy) Lookup(name string) Verdict {
	name = NormalizeName(name)
	if slices.Contains(metadataNames, name) {
		return deny("builtin: cloud metadata name")
	}
	if d := p.denied(name); d != nil {
		return deny("deny-domain %s", d.text)
	}
	if p.rules.AllowlistOnly {
		if a := p.allowed(name); a != nil {
			return allow("allow-domain " + a.text)
		}
		return deny("allowlist-only: %s is not an allowed domain", name)
	}
	return allow("default")
}

// Dest is a connection to decide.
type Dest struct {
	Protocol string // "tcp" or "udp"
	Addr     netip.AddrPort
	// Name is the name the connection asks for in its first bytes (TLS
	// SNI, HTTP Host), "" if it names none or they are not read yet.
	Name string
	// Resolved are the names known to resolve to Addr's address: those
	// the sandbox's resolver answered with it, and denied names resolved
	// for this check.
	Resolved []string
}

// Check decides a connection. isHost tells the host's own addresses.
func (p *Policy) Check(d Dest, isHost func(netip.Addr) bool) Verdict {
	a := d.Addr.Addr().Unmap()
	if v, refused := Unreachable(a, isHost); refused {
		return v
	}
	for _, n := range p.denyNets {
		if n.Contains(a) {
			return deny("deny-cidr %s", n)
		}
	}
	port := d.Addr.Port()
	for _, r := range p.denyPorts {
		if r.match(d.Protocol, port) {
			return deny("deny-port %s", r.text)
		}
	}
	if len(p.allowPorts) > 0 && !slices.ContainsFunc(p.allowPorts, func(r portRule) bool { return r.match(d.Protocol, port) }) {
		return deny("allow-ports: %s port %d is not allowed", d.Protocol, port)
	}
	name := NormalizeName(d.Name)
	if name != "" {
		if v := p.Lookup(name); !v.Allow {
			return v
		}
	}
	for _, r := range d.Resolved {
		if dn := p.denied(NormalizeName(r)); dn != nil {
			return deny("deny-domain %s (by address)", dn.text)
		}
	}
	allowedNet := slices.ContainsFunc(p.allowNets, func(n netip.Prefix) bool { return n.Contains(a) })
	if private(a) && !allowedNet {
		return deny("builtin: private address %s (allow it with an allow-cidr rule)", a)
	}
	if !p.rules.AllowlistOnly {
		if allowedNet {
			return allow("allow-cidr")
		}
		return allow("default")
	}
	if allowedNet {
		return allow("allow-cidr")
	}
	if name != "" {
		// The name must be one the sandbox resolved to this very address:
		// an allowed name in front of any other address is domain fronting.
		if !slices.ContainsFunc(d.Resolved, func(r string) bool { return NormalizeName(r) == name }) {
			return deny("allowlist-only: %s does not resolve to %s", name, a)
		}
		return allow("allow-domain " + p.allowed(name).text)
	}
	for _, r := range d.Resolved {
		if pat := p.allowed(NormalizeName(r)); pat != nil {
			return allow("allow-domain " + pat.text)
		}
	}
	return deny("allowlist-only: no allowed domain resolves to %s", a)
}

var (
	metadataV6 = netip.MustParseAddr("fd00:ec2::254")
	// privateNets are refused unless an allow-cidr rule names them: RFC
	// 1918, shared address space (carrier NAT), benchmarking, unique local.
	privateNets = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("fc00::/7"),
	}
	// reservedNets are never reachable: "this network", IETF protocol
	// assignments, documentation, reserved and broadcast.
	reservedNets = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("192.0.0.0/24"),
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("240.0.0.0/4"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("100::/64"),
	}
)

// Unreachable tells the addresses no rule can make reachable: the host,
// loopback, link-local, metadata, multicast and reserved addresses. The
// verdict names the built-in rule.
func Unreachable(a netip.Addr, isHost func(netip.Addr) bool) (v Verdict, refused bool) {
	v, ok := builtin(a.Unmap(), isHost)
	return v, !ok
}

func builtin(a netip.Addr, isHost func(netip.Addr) bool) (Verdict, bool) {
	switch {
	case !a.IsValid() || a.IsUnspecified():
		return deny("builtin: unspecified address"), false
	case a.IsLoopback():
		return deny("builtin: loopback"), false
	case a == netip.AddrFrom4([4]byte{169, 254, 169, 254}) || a == metadataV6:
		return deny("builtin: cloud metadata address"), false
	case a.IsLinkLocalUnicast():
		return deny("builtin: link-local address"), false
	case a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return deny("builtin: multicast or broadcast"), false
	case isHost != nil && isHost(a):
		return deny("builtin: an address of the host"), false
	}
	for _, n := range reservedNets {
		if n.Contains(a) {
			return deny("builtin: reserved address %s", a), false
		}
	}
	return Verdict{}, true
}

func private(a netip.Addr) bool {
	return slices.ContainsFunc(privateNets, func(n netip.Prefix) bool { return n.Contains(a) })
}
