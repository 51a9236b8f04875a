//go:build linux

package netstack

import (
	"io"
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
