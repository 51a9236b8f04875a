package netstack

import (
	"context"
	"net"
	"slices"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

const (
	// udpIdle ends a UDP flow nobody used for this long.
	udpIdle = 60 * time.Second
	// dnsIdle ends a flow to the resolver: one query is the common case.
	dnsIdle = 5 * time.Second
	// maxDatagram is the largest UDP payload relayed.
	maxDatagram = 65535
)

// handleUDP decides the first datagram of a flow (sandbox address and
// port to destination). Refused flows are answered with ICMP port
// unreachable, so that programs fail at once.
func (s *Stack) handleUDP(r *udp.ForwarderRequest) bool {
	id := r.ID()
	dst := addrPort(id.LocalAddress, id.LocalPort)
	switch {
	case isResolver(dst.Addr()) && dst.Port() == 53:
		conn := s.udpConn(r)
		if conn == nil {
			return true
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.serveDNSDatagrams(conn)
		}()
		return true
	case isGateway(dst.Addr()):
		return false
	case slices.Contains(dnsPorts, dst.Port()):
		s.audit(Event{Kind: "connect", Protocol: "udp", Dest: dst.String(), Rule: "builtin: DNS only through agentkernel's resolver"})
		return false
	}
	if v := s.decide("udp", dst, ""); !v.Allow {
		return false
	}
	release, ok := s.takeFlow("udp", dst)
	if !ok {
		return false
	}
	up, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		release()
		return false
	}
	conn := s.udpConn(r)
	if conn == nil {
		up.Close()
		release()
		return true
	}
	s.conns.Add(1)
	go func() {
		defer s.conns.Done()
		defer release()
		s.relayUDP(conn, up)
	}()
	return true
}

func (s *Stack) udpConn(r *udp.ForwarderRequest) *gonet.UDPConn {
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		return nil
	}
	return gonet.NewUDPConn(&wq, ep)
}

// relayUDP copies datagrams both ways until the flow is idle.
func (s *Stack) relayUDP(guest *gonet.UDPConn, up *net.UDPConn) {
	defer guest.Close()
	defer up.Close()
	stop := context.AfterFunc(s.ctx, func() { guest.Close(); up.Close() })
	defer stop()
	go func() {
		buf := make([]byte, maxDatagram)
		for {
			up.SetReadDeadline(time.Now().Add(udpIdle))
			n, err := up.Read(buf)
			if err != nil {
				guest.Close()
				return
			}
			if _, err := guest.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, maxDatagram)
	for {
		guest.SetReadDeadline(time.Now().Add(udpIdle))
		n, err := guest.Read(buf)
		if err != nil {
			return
		}
		if _, err := up.Write(buf[:n]); err != nil {
			return
		}
	}
}

// serveDNSDatagrams answers the queries of one flow to the resolver.
func (s *Stack) serveDNSDatagrams(conn *gonet.UDPConn) {
	defer conn.Close()
	stop := context.AfterFunc(s.ctx, func() { conn.Close() })
	defer stop()
	buf := make([]byte, maxDatagram)
	for {
		conn.SetReadDeadline(time.Now().Add(dnsIdle))
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		if a := s.answer(s.ctx, buf[:n]); a != nil {
			conn.Write(a) //nolint:errcheck // a lost answer is retried by the client
		}
	}
}
