package netstack

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/nettap"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// Publish makes the sandbox's port pm.ContainerPort reachable on the host
// at bind:pm.HostPort (a free port if 0) and returns the mapping as
// bound. Connections arrive in the sandbox from the gateway's address.
// The port is freed when the stack closes.
func (s *Stack) Publish(pm sandbox.PortMapping, bind netip.Addr) (sandbox.PortMapping, error) {
	hostAddr := netip.AddrPortFrom(bind, pm.HostPort).String()
	guest := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(nettap.Guest4.Addr().As4()), Port: pm.ContainerPort}
	var bound netip.AddrPort
	switch pm.Protocol {
	case "udp":
		pc, err := net.ListenPacket("udp", hostAddr)
		if err != nil {
			return pm, fmt.Errorf("publishing %s/udp: %v: %w", hostAddr, err, errdefs.ErrUnavailable)
		}
		bound = pc.LocalAddr().(*net.UDPAddr).AddrPort()
		s.closeWith(pc)
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.serveUDPPort(pc.(*net.UDPConn), guest)
		}()
	default:
		ln, err := net.Listen("tcp", hostAddr)
		if err != nil {
			return pm, fmt.Errorf("publishing %s/tcp: %v: %w", hostAddr, err, errdefs.ErrUnavailable)
		}
		bound = ln.Addr().(*net.TCPAddr).AddrPort()
		s.closeWith(ln)
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.serveTCPPort(ln, guest)
		}()
	}
	pm.HostPort = bound.Port()
	return pm, nil
}

// closeWith closes c when the stack closes.
func (s *Stack) closeWith(c io.Closer) {
	context.AfterFunc(s.ctx, func() { c.Close() })
}

func (s *Stack) serveTCPPort(ln net.Listener, guest tcpip.FullAddress) {
	for {
		host, err := ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			defer host.Close()
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DialTimeout)
			in, err := gonet.DialContextTCP(ctx, s.s, guest, ipv4.ProtocolNumber)
			cancel()
			if err != nil {
				return
			}
			defer in.Close()
			stop := context.AfterFunc(s.ctx, func() { in.Close(); host.Close() })
			defer stop()
			done := make(chan struct{})
			go func() {
				defer close(done)
				io.Copy(in, host) //nolint:errcheck
				in.CloseWrite()
			}()
			io.Copy(host, in) //nolint:errcheck
			host.(*net.TCPConn).CloseWrite()
			<-done
		}()
	}
}

// serveUDPPort relays datagrams between host clients and the sandbox's
// port, one flow per client address.
func (s *Stack) serveUDPPort(pc *net.UDPConn, guest tcpip.FullAddress) {
	var mu sync.Mutex
	flows := map[netip.AddrPort]*gonet.UDPConn{}
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		mu.Lock()
		flow := flows[from]
		if flow == nil {
			flow, err = gonet.DialUDP(s.s, nil, &guest, ipv4.ProtocolNumber)
			if err != nil {
				mu.Unlock()
				continue
			}
			flows[from] = flow
			s.conns.Add(1)
			go func() {
				defer s.conns.Done()
				defer func() {
					mu.Lock()
					delete(flows, from)
					mu.Unlock()
					flow.Close()
				}()
				stop := context.AfterFunc(s.ctx, func() { flow.Close() })
				defer stop()
				rbuf := make([]byte, maxDatagram)
				for {
					flow.SetReadDeadline(time.Now().Add(udpIdle))
					n, err := flow.Read(rbuf)
					if err != nil {
						return
					}
					pc.WriteToUDPAddrPort(rbuf[:n], from) //nolint:errcheck
				}
			}()
		}
		mu.Unlock()
		flow.Write(buf[:n]) //nolint:errcheck // UDP: a lost datagram is the sender's to retry
	}
}
