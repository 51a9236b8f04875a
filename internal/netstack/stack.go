package netstack

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/qdisc/fifo"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
	"github.com/agentkernel-go/agentkernel/internal/nettap"
)

// Config configures a sandbox's stack.
type Config struct {
	// Policy decides connections and lookups; SetPolicy replaces it.
	Policy *netpolicy.Policy
	// Hosts are names that resolve to fixed addresses, ahead of the
	// host's resolver (--add-host).
	Hosts map[string][]netip.Addr
	// Resolver resolves names on the host; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// IsHost tells the host's own addresses; nil means the addresses of
	// the host's interfaces, read again every few seconds.
	IsHost func(netip.Addr) bool
	// Audit receives every refused connection and lookup; may be nil.
	Audit func(Event)
	// DialTimeout bounds connecting upstream (default 10 s).
	DialTimeout time.Duration
	// MaxFlows bounds the sandbox's open TCP connections and UDP flows
	// together (default 4096): each holds a descriptor of the daemon,
	// which serves every sandbox.
	MaxFlows int
}

// Event is a refusal, for the audit log.
type Event struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`     // "connect" or "lookup"
	Protocol string    `json:"protocol"` // tcp, udp, dns
	Dest     string    `json:"dest,omitempty"`
	Name     string    `json:"name,omitempty"`
	Rule     string    `json:"rule"`
}

// Stack is one sandbox's network.
type Stack struct {
	cfg    Config
	s      *stack.Stack
	link   *tapLink
	pol    atomic.Pointer[netpolicy.Policy]
	names  *names
	ctx    context.Context
	cancel context.CancelFunc
	conns  sync.WaitGroup
	isHost func(netip.Addr) bool
	done   chan struct{}
	gone   sync.Once
	flows  atomic.Int64 // open TCP connections and UDP flows
}

const nicID = 1

// gatewayMAC is the stack's link address on the sandbox's segment.
var gatewayMAC = tcpip.LinkAddress("\x02\x61\x6b\x00\x00\x02")

// New serves the TAP device tap (from nettap.Create) with cfg. The stack
// owns tap from here on, also on error.
func New(tap *os.File, cfg Config) (*Stack, error) {
	if cfg.Policy == nil {
		tap.Close()
		return nil, fmt.Errorf("netstack: no policy")
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.MaxFlows == 0 {
		cfg.MaxFlows = 4096
	}
	st := &Stack{cfg: cfg, names: newNames(), done: make(chan struct{})}
	st.isHost = cfg.IsHost
	if st.isHost == nil {
		st.isHost = hostAddrs()
	}
	st.pol.Store(cfg.Policy)
	st.ctx, st.cancel = context.WithCancel(context.Background())

	st.s = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
	})
	ep, err := newTAPLink(tap, gatewayMAC, st.linkGone)
	if err != nil {
		st.s.Close()
		return nil, fmt.Errorf("netstack: %w", err)
	}
	st.link = ep
	fail := func(format string, a ...any) (*Stack, error) {
		st.s.Close()
		st.link.Close()
		st.link.drain()
		return nil, fmt.Errorf("netstack: "+format, a...)
	}
	if terr := st.s.CreateNICWithOptions(nicID, ep, stack.NICOptions{QDisc: fifo.New(ep, 1, 1024)}); terr != nil {
		return fail("NIC: %v", terr)
	}
	// Promiscuous and spoofing: the stack takes packets for every
	// destination and answers as any of them, which is what lets it
	// terminate the sandbox's connections to the world.
	st.s.SetPromiscuousMode(nicID, true)
	st.s.SetSpoofing(nicID, true)
	for _, a := range []netip.Addr{nettap.Gateway4, nettap.DNS4, nettap.Gateway6, nettap.DNS6} {
		pa := tcpip.ProtocolAddress{
			Protocol:          protocolOf(a),
			AddressWithPrefix: tcpip.AddrFromSlice(a.AsSlice()).WithPrefix(),
		}
		if terr := st.s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); terr != nil {
			return fail("address %s: %v", a, terr)
		}
	}
	st.s.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})
	sack := tcpip.TCPSACKEnabled(true)
	st.s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	// Windows big enough for a fast host-local path.
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 8 << 20}
	st.s.SetTransportProtocolOption(tcp.ProtocolNumber, &rcv)
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 8 << 20}
	st.s.SetTransportProtocolOption(tcp.ProtocolNumber, &snd)

	tcpFwd := tcp.NewForwarder(st.s, 0, 1024, st.handleTCP)
	st.s.SetTransportProtocolHandler(tcp.ProtocolNumber, tcpFwd.HandlePacket)
	udpFwd := udp.NewForwarder(st.s, st.handleUDP)
	st.s.SetTransportProtocolHandler(udp.ProtocolNumber, udpFwd.HandlePacket)
	return st, nil
}

// Done is closed when the sandbox's interface is gone (or Close ran).
func (s *Stack) Done() <-chan struct{} { return s.done }

func (s *Stack) linkGone() { s.gone.Do(func() { close(s.done) }) }

// SetPolicy replaces the policy; connections made from now on are decided
// by it, established ones are not cut.
func (s *Stack) SetPolicy(p *netpolicy.Policy) { s.pol.Store(p) }

func (s *Stack) policy() *netpolicy.Policy { return s.pol.Load() }

// Close stops the stack: every relayed connection is closed, and the TAP
// file with it.
func (s *Stack) Close() error {
	s.cancel()
	s.s.Close()
	s.conns.Wait()
	s.s.Wait()
	s.link.Close()
	s.link.drain()
	s.linkGone()
	return nil
}

func (s *Stack) audit(e Event) {
	if s.cfg.Audit != nil {
		e.Time = time.Now().UTC()
		s.cfg.Audit(e)
	}
}

// decide checks a connection with the names known for its address, and
// reports a refusal.
func (s *Stack) decide(protocol string, dst netip.AddrPort, name string) netpolicy.Verdict {
	v := s.policy().Check(netpolicy.Dest{Protocol: protocol, Addr: dst, Name: name, Resolved: s.names.of(dst.Addr())}, s.isHost)
	if !v.Allow {
		s.audit(Event{Kind: "connect", Protocol: protocol, Dest: dst.String(), Name: name, Rule: v.Rule})
	}
	return v
}

// takeFlow counts a new flow in, or refuses it (and reports that) when
// the sandbox has MaxFlows open. The caller calls the returned release
// when the flow ends.
func (s *Stack) takeFlow(protocol string, dst netip.AddrPort) (release func(), ok bool) {
	if s.flows.Add(1) > int64(s.cfg.MaxFlows) {
		s.flows.Add(-1)
		s.audit(Event{Kind: "connect", Protocol: protocol, Dest: dst.String(), Rule: fmt.Sprintf("builtin: at most %d open connections and flows", s.cfg.MaxFlows)})
		return nil, false
	}
	return func() { s.flows.Add(-1) }, true
}

// isResolver tells the resolver's addresses; isGateway the stack's own.
func isResolver(a netip.Addr) bool { return a == nettap.DNS4 || a == nettap.DNS6 }
func isGateway(a netip.Addr) bool {
	return a == nettap.Gateway4 || a == nettap.Gateway6 || isResolver(a)
}

func protocolOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

func addrPort(a tcpip.Address, port uint16) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return netip.AddrPortFrom(ip.Unmap(), port)
}

// hostAddrs returns a test for the host's interface addresses, read again
// when older than a few seconds (interfaces come and go).
func hostAddrs() func(netip.Addr) bool {
	var mu sync.Mutex
	var read time.Time
	set := map[netip.Addr]bool{}
	return func(a netip.Addr) bool {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(read) > 3*time.Second {
			set = map[netip.Addr]bool{}
			if addrs, err := net.InterfaceAddrs(); err == nil {
				for _, ad := range addrs {
					if n, ok := ad.(*net.IPNet); ok {
						if ip, ok := netip.AddrFromSlice(n.IP); ok {
							set[ip.Unmap()] = true
						}
					}
				}
			}
			read = time.Now()
		}
		return set[a.Unmap()]
	}
}
