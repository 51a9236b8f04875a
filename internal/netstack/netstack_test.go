//go:build linux

package netstack

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
	"github.com/agentkernel-go/agentkernel/internal/nettap"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// dial connects from inside the sandbox.
func (w *world) dial(t testing.TB, network string, addr netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	var err error
	inNS(t, w.guest, func() { c, err = (&net.Dialer{Timeout: 3 * time.Second}).Dial(network, addr.String()) })
	return c, err
}

// get fetches / from addr inside the sandbox, asking for name (the Host
// header, and the SNI over https).
func (w *world) get(t *testing.T, scheme, name string, addr netip.Addr) (string, error) {
	port := uint16(80)
	if scheme == "https" {
		port = 443
	}
	c, err := w.dial(t, "tcp", netip.AddrPortFrom(addr, port))
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if scheme == "https" {
		tc := tls.Client(c, &tls.Config{ServerName: name, RootCAs: w.ca})
		if err := tc.Handshake(); err != nil {
			return "", err
		}
		c = tc
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", name)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// lookup asks the sandbox's resolver, from inside the sandbox, to server
// (the resolver's address unless a test asks another).
func (w *world) lookup(t *testing.T, server netip.Addr, name string, typ dnsmessage.Type) (dnsmessage.RCode, []netip.Addr, error) {
	c, err := w.dial(t, "udp", netip.AddrPortFrom(server, 53))
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	q := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, RecursionDesired: true})
	q.StartQuestions()
	q.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name + "."), Type: typ, Class: dnsmessage.ClassINET})
	raw, _ := q.Finish()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(raw); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return 0, nil, err
	}
	var p dnsmessage.Parser
	h, err := p.Start(buf[:n])
	if err != nil {
		return 0, nil, err
	}
	p.SkipAllQuestions()
	var addrs []netip.Addr
	for {
		rh, err := p.AnswerHeader()
		if err != nil {
			break
		}
		switch rh.Type {
		case dnsmessage.TypeA:
			r, _ := p.AResource()
			addrs = append(addrs, netip.AddrFrom4(r.A))
		case dnsmessage.TypeAAAA:
			r, _ := p.AAAAResource()
			addrs = append(addrs, netip.AddrFrom16(r.AAAA))
		default:
			p.SkipAnswer()
			addrs = append(addrs, netip.Addr{}) // some other record: still an answer
		}
	}
	return h.RCode, addrs, nil
}

func (w *world) refusedBy(rule string) bool {
	for _, e := range w.refusals() {
		if strings.Contains(e.Rule, rule) {
			return true
		}
	}
	return false
}

func TestEgressPolicyIsEnforced(t *testing.T) {
	w := newWorld(t, netpolicy.Rules{AllowlistOnly: true, AllowDomains: []string{"allowed.test"}, DenyDomains: []string{"denied.test"}})

	// By address alone, before any lookup, nothing is reachable.
	if _, err := w.get(t, "http", "allowed.test", upAllowed); err == nil {
		t.Fatal("an address no allowed name resolved to was reachable")
	}

	rcode, addrs, err := w.lookup(t, nettap.DNS4, "allowed.test", dnsmessage.TypeA)
	if err != nil || rcode != dnsmessage.RCodeSuccess || len(addrs) != 1 || addrs[0] != upAllowed {
		t.Fatalf("lookup allowed.test: %v %v %v", rcode, addrs, err)
	}
	for _, scheme := range []string{"http", "https"} {
		if body, err := w.get(t, scheme, "allowed.test", upAllowed); err != nil || body != "hello allowed.test" {
			t.Errorf("%s to the allowed domain: %q, %v", scheme, body, err)
		}
	}

	// The denied domain neither resolves nor is reachable by address.
	if rcode, addrs, err := w.lookup(t, nettap.DNS4, "denied.test", dnsmessage.TypeA); err != nil || rcode != dnsmessage.RCodeNameError || len(addrs) != 0 {
		t.Errorf("lookup denied.test: %v %v %v, want NXDOMAIN", rcode, addrs, err)
	}
	if _, err := w.get(t, "http", "denied.test", upDenied); err == nil {
		t.Error("the denied domain's address was reachable")
	}
	// Names and addresses must agree both ways.
	if _, err := w.get(t, "https", "allowed.test", upDenied); err == nil {
		t.Error("an allowed SNI toward a denied address got through")
	}
	if _, err := w.get(t, "https", "denied.test", upAllowed); err == nil {
		t.Error("a denied SNI toward an allowed address got through")
	}
	if _, err := w.get(t, "http", "other.test", upAllowed); err == nil {
		t.Error("a Host header that is not allowed got through to an allowed address")
	}
	if !w.refusedBy("deny-domain denied.test") || !w.refusedBy("allowlist-only") {
		t.Errorf("refusals not audited: %+v", w.refusals())
	}

	// No DNS for names that are not allowed, whatever the type, and no
	// DNS but through the resolver.
	if rcode, addrs, err := w.lookup(t, nettap.DNS4, "tunnel.evil.test", dnsmessage.TypeTXT); err != nil || rcode != dnsmessage.RCodeNameError || len(addrs) != 0 {
		t.Errorf("TXT for a name that is not allowed: %v %v %v", rcode, addrs, err)
	}
	if _, _, err := w.lookup(t, upAllowed, "allowed.test", dnsmessage.TypeA); err == nil {
		t.Error("a DNS server other than the sandbox's resolver answered")
	}
	if !w.refusedBy("DNS only through agentkernel's resolver") {
		t.Error("DNS to another server was not audited")
	}

	// UDP to an allowed name's address goes through.
	c, err := w.dial(t, "udp", netip.AddrPortFrom(upAllowed, 7))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	c.Write([]byte("ping"))
	buf := make([]byte, 64)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "echo ping" {
		t.Errorf("UDP echo: %q, %v", buf[:n], err)
	}
	c.Close()

	// A new rule applies to new connections without a restart.
	pol, err := netpolicy.Compile(netpolicy.Rules{AllowlistOnly: true, AllowDomains: []string{"allowed.test", "other.test"}, DenyDomains: []string{"denied.test"}})
	if err != nil {
		t.Fatal(err)
	}
	w.stack.SetPolicy(pol)
	if rcode, _, err := w.lookup(t, nettap.DNS4, "other.test", dnsmessage.TypeA); err != nil || rcode != dnsmessage.RCodeSuccess {
		t.Fatalf("lookup other.test after the change: %v %v", rcode, err)
	}
	if body, err := w.get(t, "https", "other.test", upAllowed); err != nil || body != "hello other.test" {
		t.Errorf("other.test after the change: %q, %v", body, err)
	}
}

func TestHostAndReservedAddressesAreUnreachable(t *testing.T) {
	w := newWorld(t, netpolicy.Rules{})
	// A server on the host's end of the veth: an address of the host.
	ln, err := net.Listen("tcp", netip.AddrPortFrom(upHost, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("host secret"))
			c.Close()
		}
	}()
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()
	for _, dst := range []netip.AddrPort{
		netip.AddrPortFrom(upHost, port),
		netip.AddrPortFrom(nettap.Gateway4, port),
		netip.MustParseAddrPort("169.254.169.254:80"),
	} {
		c, err := w.dial(t, "tcp", dst)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			b, _ := io.ReadAll(c)
			c.Close()
			t.Errorf("%s reachable from the sandbox (read %q)", dst, b)
		}
	}
	if !w.refusedBy("an address of the host") || !w.refusedBy("cloud metadata") {
		t.Errorf("refusals: %+v", w.refusals())
	}
	// A name that resolves to loopback gets no address.
	if rcode, addrs, err := w.lookup(t, nettap.DNS4, "loop.test", dnsmessage.TypeA); err != nil || rcode != dnsmessage.RCodeSuccess || len(addrs) != 0 {
		t.Errorf("loop.test: %v %v %v, want no addresses", rcode, addrs, err)
	}
	// Private ranges need a rule.
	if c, err := w.dial(t, "tcp", netip.MustParseAddrPort("10.1.2.3:80")); err == nil {
		c.Close()
		t.Error("a private address was reachable without an allow-cidr rule")
	}
	// Public addresses are, here: the allowed domain's without a lookup.
	if body, err := w.get(t, "http", "allowed.test", upAllowed); err != nil || body != "hello allowed.test" {
		t.Errorf("an allowed address: %q, %v", body, err)
	}
}

func TestPublishedPorts(t *testing.T) {
	w := newWorld(t, netpolicy.Rules{})
	// Servers inside the sandbox: TCP on 8080, UDP echo on 5353.
	var ln net.Listener
	var pc net.PacketConn
	var err error
	inNS(t, w.guest, func() {
		if ln, err = net.Listen("tcp", ":8080"); err == nil {
			pc, err = net.ListenPacket("udp", ":5353")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer pc.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "from the sandbox to %s", c.RemoteAddr())
			c.Close()
		}
	}()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("sandbox echo "), buf[:n]...), from)
		}
	}()
	loopback := netip.MustParseAddr("127.0.0.1")
	tcp, err := w.stack.Publish(sandbox.PortMapping{ContainerPort: 8080, Protocol: "tcp"}, loopback)
	if err != nil || tcp.HostPort == 0 {
		t.Fatalf("publish tcp: %+v %v", tcp, err)
	}
	udp, err := w.stack.Publish(sandbox.PortMapping{ContainerPort: 5353, Protocol: "udp"}, loopback)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", netip.AddrPortFrom(loopback, tcp.HostPort).String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	c.Close()
	if !strings.HasPrefix(string(b), "from the sandbox to "+nettap.Gateway4.String()) {
		t.Errorf("published TCP port: %q", b)
	}
	u, err := net.Dial("udp", netip.AddrPortFrom(loopback, udp.HostPort).String())
	if err != nil {
		t.Fatal(err)
	}
	u.SetDeadline(time.Now().Add(5 * time.Second))
	u.Write([]byte("hi"))
	buf := make([]byte, 64)
	if n, err := u.Read(buf); err != nil || string(buf[:n]) != "sandbox echo hi" {
		t.Errorf("published UDP port: %q, %v", buf[:n], err)
	}
	u.Close()
	// A port in use is refused, and the stack's ports are free once it is
	// closed.
	if _, err := w.stack.Publish(sandbox.PortMapping{HostPort: tcp.HostPort, ContainerPort: 80, Protocol: "tcp"}, loopback); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("publishing a port in use: %v", err)
	}
	w.stack.Close()
	again, err := net.Listen("tcp", netip.AddrPortFrom(loopback, tcp.HostPort).String())
	if err != nil {
		t.Fatalf("the published port is still taken after close: %v", err)
	}
	again.Close()
}

func TestIPv6(t *testing.T) {
	w := newWorld(t, netpolicy.Rules{})
	rcode, addrs, err := w.lookup(t, nettap.DNS6, "six.test", dnsmessage.TypeAAAA)
	if err != nil || rcode != dnsmessage.RCodeSuccess || len(addrs) != 1 || addrs[0] != upAllowed6 {
		t.Fatalf("AAAA over IPv6: %v %v %v", rcode, addrs, err)
	}
	if body, err := w.get(t, "http", "six.test", upAllowed6); err != nil || body != "hello six.test" {
		t.Errorf("HTTP over IPv6: %q, %v", body, err)
	}
	// The host's IPv6 address is as unreachable as its IPv4 ones.
	if c, err := w.dial(t, "tcp", netip.AddrPortFrom(upHost6, 80)); err == nil {
		c.Close()
		t.Error("the host's IPv6 address was reachable")
	}
}

func TestFlowLimit(t *testing.T) {
	w := newWorld(t, netpolicy.Rules{})
	w.stack.cfg.MaxFlows = 2
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 2 {
		c, err := w.dial(t, "tcp", netip.AddrPortFrom(upAllowed, 80))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	if c, err := w.dial(t, "tcp", netip.AddrPortFrom(upAllowed, 80)); err == nil {
		c.Close()
		t.Fatal("a connection past the limit was accepted")
	}
	if !w.refusedBy("at most 2 open connections") {
		t.Errorf("the limit was not audited: %+v", w.refusals())
	}
	// A closed connection makes room again.
	held[0].Close()
	held = held[1:]
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := w.dial(t, "tcp", netip.AddrPortFrom(upAllowed, 80))
		if err == nil {
			held = append(held, c)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no room after a connection closed")
		}
	}
}
