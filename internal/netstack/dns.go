package netstack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
)

const (
	// answerTTL is the TTL of the resolver's answers.
	answerTTL = 60
	// resolveTimeout bounds one lookup on the host.
	resolveTimeout = 5 * time.Second
)

// answer answers one DNS query from the sandbox, or returns nil to drop
// it. Names the policy refuses do not exist (NXDOMAIN), whatever the
// record type; allowed names get their A and AAAA records, resolved on
// the host, and no records of other types.
func (s *Stack) answer(ctx context.Context, query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil
	}
	qs, err := p.AllQuestions()
	resp := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if err != nil || len(qs) != 1 || qs[0].Class != dnsmessage.ClassINET {
		resp.RCode = dnsmessage.RCodeFormatError
		return build(resp, qs, nil)
	}
	q := qs[0]
	name := netpolicy.NormalizeName(q.Name.String())
	if v := s.policy().Lookup(name); !v.Allow {
		s.audit(Event{Kind: "lookup", Protocol: "dns", Name: name, Rule: v.Rule})
		resp.RCode = dnsmessage.RCodeNameError
		return build(resp, qs, nil)
	}
	var network string
	switch q.Type {
	case dnsmessage.TypeA:
		network = "ip4"
	case dnsmessage.TypeAAAA:
		network = "ip6"
	default:
		return build(resp, qs, nil) // no data of this type
	}
	addrs, err := s.resolve(ctx, name, network)
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		resp.RCode = dnsmessage.RCodeNameError
		return build(resp, qs, nil)
	case err != nil:
		resp.RCode = dnsmessage.RCodeServerFailure
		return build(resp, qs, nil)
	}
	// Never hand out what no connection may reach anyway (loopback, the
	// host, link-local): a rebinding name gets no address.
	kept := addrs[:0]
	for _, a := range addrs {
		if _, refused := netpolicy.Unreachable(a, s.isHost); !refused {
			kept = append(kept, a)
		}
	}
	s.names.bind(name, kept, bindingTTL)
	return build(resp, qs, kept)
}

// resolve looks name up: the configured hosts first, then the host's
// resolver.
func (s *Stack) resolve(ctx context.Context, name, network string) ([]netip.Addr, error) {
	if fixed, ok := s.cfg.Hosts[name]; ok {
		var out []netip.Addr
		for _, a := range fixed {
			if (network == "ip4") == a.Unmap().Is4() {
				out = append(out, a.Unmap())
			}
		}
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := s.cfg.Resolver.LookupNetIP(ctx, network, name)
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	return addrs, err
}

func build(h dnsmessage.Header, qs []dnsmessage.Question, addrs []netip.Addr) []byte {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), h)
	b.EnableCompression()
	b.StartQuestions()
	for _, q := range qs {
		b.Question(q)
	}
	b.StartAnswers()
	for _, a := range addrs {
		rh := dnsmessage.ResourceHeader{Name: qs[0].Name, Class: dnsmessage.ClassINET, TTL: answerTTL}
		if a.Is4() {
			b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		} else {
			b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
