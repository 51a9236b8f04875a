//go:build linux

package netstack

import (
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
)

// BenchmarkDownload reads from an upstream bulk source through the stack
// into a socket of the sandbox's namespace; b.SetBytes makes go test
// report the throughput.
func BenchmarkDownload(b *testing.B) {
	w := newWorld(b, netpolicy.Rules{})
	const chunk = 64 << 20
	c, err := w.dial(b, "tcp", netip.AddrPortFrom(upAllowed, 19))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetBytes(chunk)
	b.ResetTimer()
	for b.Loop() {
		if _, err := io.CopyN(io.Discard, c, chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConnect opens and closes a TCP connection through the stack to
// an upstream server: the latency a new connection adds.
func BenchmarkConnect(b *testing.B) {
	w := newWorld(b, netpolicy.Rules{})
	addr := netip.AddrPortFrom(upAllowed, 80).String()
	// One thread in the sandbox's namespace makes every connection.
	inNS(b, w.guest, func() {
		for b.Loop() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			c.Close()
		}
	})
}
