package netstack

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// serverFirst are ports of protocols in which the server speaks first:
// their connections are decided by address without waiting for a name.
var serverFirst = []uint16{21, 22, 23, 25, 110, 143, 587, 3306}

// dnsPorts are DNS and DNS over TLS: only the stack's resolver serves them.
var dnsPorts = []uint16{53, 853}

// handleTCP decides a new connection from the sandbox (it runs in a
// goroutine of its own, started by the forwarder). A refused connection
// is reset; an allowed one is dialled upstream before the handshake with
// the sandbox completes, so an upstream refusal is a reset too.
func (s *Stack) handleTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	dst := addrPort(id.LocalAddress, id.LocalPort)
	if isResolver(dst.Addr()) && dst.Port() == 53 {
		if conn := accept(r); conn != nil {
			s.serveDNSStream(conn)
		}
		return
	}
	if isGateway(dst.Addr()) {
		r.Complete(true) // the stack itself offers nothing else
		return
	}
	if slices.Contains(dnsPorts, dst.Port()) {
		s.audit(Event{Kind: "connect", Protocol: "tcp", Dest: dst.String(), Rule: "builtin: DNS only through agentkernel's resolver"})
		r.Complete(true)
		return
	}
	if v := s.decide("tcp", dst, ""); !v.Allow {
		r.Complete(true)
		return
	}
	release, ok := s.takeFlow("tcp", dst)
	if !ok {
		r.Complete(true)
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DialTimeout)
	up, err := (&net.Dialer{}).DialContext(ctx, "tcp", dst.String())
	cancel()
	if err != nil {
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		up.Close()
		r.Complete(true)
		return
	}
	r.Complete(false)
	ep.SocketOptions().SetKeepAlive(true)
	guest := gonet.NewTCPConn(&wq, ep)
	s.conns.Add(1)
	defer s.conns.Done()
	s.relayTCP(guest, ep, up.(*net.TCPConn), dst)
}

func accept(r *tcp.ForwarderRequest) *gonet.TCPConn {
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		r.Complete(true)
		return nil
	}
	r.Complete(false)
	return gonet.NewTCPConn(&wq, ep)
}

// relayTCP reads the name the connection asks for, decides again with
// it, and then copies both ways until both sides are done.
func (s *Stack) relayTCP(guest *gonet.TCPConn, ep tcpip.Endpoint, up *net.TCPConn, dst netip.AddrPort) {
	defer up.Close()
	defer guest.Close()
	stop := context.AfterFunc(s.ctx, func() { ep.Abort(); up.Close() })
	defer stop()
	br := bufio.NewReaderSize(guest, 2*maxSniff)
	var seen []byte
	if !slices.Contains(serverFirst, dst.Port()) {
		var name string
		name, seen = sniff(s.ctx, guest, br)
		if name != "" {
			if v := s.decide("tcp", dst, name); !v.Allow {
				ep.Abort()
				return
			}
		}
	}
	if len(seen) > 0 {
		if _, err := up.Write(seen); err != nil {
			return
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pump(up, br) // either side ending ends this direction
		up.CloseWrite()
	}()
	pump(guest, up)
	guest.CloseWrite()
	<-done
}

// relayBuffer is the most one read moves: large, because the stack pays
// per write, and a window's worth is what the host socket has ready.
// Buffers are pooled: a connection's life may be a few packets.
const relayBuffer = 256 << 10

var relayBuffers = sync.Pool{New: func() any { b := make([]byte, relayBuffer); return &b }}

// pump copies src to dst in large reads (io.Copy would hand a net.TCPConn
// source its own 32 KiB loop), until either fails or src ends.
func pump(dst io.Writer, src io.Reader) {
	bp := relayBuffers.Get().(*[]byte)
	defer relayBuffers.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// serveDNSStream answers DNS over TCP (2-byte length-prefixed messages).
func (s *Stack) serveDNSStream(conn *gonet.TCPConn) {
	s.conns.Add(1)
	defer s.conns.Done()
	defer conn.Close()
	stop := context.AfterFunc(s.ctx, func() { conn.Close() })
	defer stop()
	for {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var n [2]byte
		if _, err := io.ReadFull(conn, n[:]); err != nil {
			return
		}
		q := make([]byte, int(n[0])<<8|int(n[1]))
		if _, err := io.ReadFull(conn, q); err != nil {
			return
		}
		a := s.answer(s.ctx, q)
		if a == nil {
			return
		}
		if _, err := conn.Write(append([]byte{byte(len(a) >> 8), byte(len(a))}, a...)); err != nil {
			return
		}
	}
}
