package netpolicy

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// Rules are a sandbox's egress rules as users write them: in
// agentkernel.toml ([security.domains] allow, block, allowlist_only;
// [network] allow_cidrs, ...), on the command line and in the API.
type Rules struct {
	// AllowDomains are reachable names; with AllowlistOnly the only ones.
	AllowDomains []string `json:"allow_domains,omitempty"`
	// DenyDomains never resolve and are never reachable, also by address.
	DenyDomains []string `json:"deny_domains,omitempty"`
	// AllowlistOnly refuses every name not in AllowDomains, and every
	// connection to an address no allowed name resolved to.
	AllowlistOnly bool `json:"allowlist_only,omitempty"`
	// AllowCIDRs are reachable networks, private ones included; with
	// AllowlistOnly they are reachable without a name.
	AllowCIDRs []string `json:"allow_cidrs,omitempty"`
	// DenyCIDRs are never reachable.
	DenyCIDRs []string `json:"deny_cidrs,omitempty"`
	// AllowPorts, if any, are the only destination ports allowed;
	// DenyPorts are refused. A port rule is "443", "8000-8100" or either
	// with "/tcp" or "/udp".
	AllowPorts []string `json:"allow_ports,omitempty"`
	DenyPorts  []string `json:"deny_ports,omitempty"`
}

// Merge returns r with o's rules added: lists are joined and
// AllowlistOnly holds if either has it. Profiles, presets, the config
// file, flags and API requests combine this way; nothing later can
// remove an earlier deny.
func (r Rules) Merge(o Rules) Rules {
	join := func(a, b []string) []string {
		out := slices.Clone(a)
		for _, s := range b {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out
	}
	return Rules{
		AllowDomains:  join(r.AllowDomains, o.AllowDomains),
		DenyDomains:   join(r.DenyDomains, o.DenyDomains),
		AllowlistOnly: r.AllowlistOnly || o.AllowlistOnly,
		AllowCIDRs:    join(r.AllowCIDRs, o.AllowCIDRs),
		DenyCIDRs:     join(r.DenyCIDRs, o.DenyCIDRs),
		AllowPorts:    join(r.AllowPorts, o.AllowPorts),
		DenyPorts:     join(r.DenyPorts, o.DenyPorts),
	}
}

// IsZero tells rules that add nothing to the built-in ones.
func (r Rules) IsZero() bool {
	return len(r.AllowDomains)+len(r.DenyDomains)+len(r.AllowCIDRs)+len(r.DenyCIDRs)+
		len(r.AllowPorts)+len(r.DenyPorts) == 0 && !r.AllowlistOnly
}

// pattern is a compiled domain pattern.
type pattern struct {
	text string // as written, normalised: "*.example.com" or "example.com"
	name string // the name part: "example.com"
	sub  bool   // also every name under it
}

func (p pattern) match(name string) bool {
	if name == p.name {
		return true
	}
	return p.sub && strings.HasSuffix(name, "."+p.name)
}

// parsePattern reads a domain pattern: a DNS name, optionally preceded by
// "*." (that name and every name under it).
func parsePattern(s string) (pattern, error) {
	text := NormalizeName(s)
	name, sub := strings.CutPrefix(text, "*.")
	if err := checkName(name); err != nil {
		return pattern{}, fmt.Errorf("domain pattern %q: %v (want a name like example.com or *.example.com): %w", s, err, errdefs.ErrInvalidArgument)
	}
	return pattern{text: text, name: name, sub: sub}, nil
}

// NormalizeName lower-cases a DNS name and drops a final dot and
// surrounding space.
func NormalizeName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// checkName accepts host names: dot-separated labels of letters, digits,
// hyphens and underscores (SRV and DKIM names have them), 1–63 bytes each,
// 253 in all.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	if len(name) > 253 {
		return fmt.Errorf("name longer than 253 bytes")
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("label %q: empty or longer than 63 bytes", label)
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("label %q: character %q", label, c)
			}
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q: starts or ends with a hyphen", label)
		}
	}
	return nil
}

// portRule is a compiled port rule.
type portRule struct {
	text     string
	lo, hi   uint16
	protocol string // "" for both
}

func (r portRule) match(protocol string, port uint16) bool {
	return (r.protocol == "" || r.protocol == protocol) && r.lo <= port && port <= r.hi
}

func parsePortRule(s string) (portRule, error) {
	bad := func(why string) (portRule, error) {
		return portRule{}, fmt.Errorf("port rule %q: %s (want 443, 8000-8100, 53/udp): %w", s, why, errdefs.ErrInvalidArgument)
	}
	text := strings.ToLower(strings.TrimSpace(s))
	ports, protocol, hasProto := strings.Cut(text, "/")
	if hasProto && protocol != "tcp" && protocol != "udp" {
		return bad("protocol must be tcp or udp")
	}
	loS, hiS, isRange := strings.Cut(ports, "-")
	if !isRange {
		hiS = loS
	}
	lo, err1 := strconv.ParseUint(loS, 10, 16)
	hi, err2 := strconv.ParseUint(hiS, 10, 16)
	if err1 != nil || err2 != nil || lo == 0 || lo > hi {
		return bad("ports are 1-65535, low to high")
	}
	return portRule{text: text, lo: uint16(lo), hi: uint16(hi), protocol: protocol}, nil
}

// parseCIDR reads a network ("10.0.0.0/8") or a single address.
func parseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("CIDR %q: want an address or a network like 10.0.0.0/8 or fd00::/8: %w", s, errdefs.ErrInvalidArgument)
}
