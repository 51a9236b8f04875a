package netstack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
)

// clientHello is what a TLS client sends first when it asks for name.
func clientHello(t testing.TB, name string) []byte {
	c, s := net.Pipe()
	go tls.Client(c, &tls.Config{ServerName: name}).Handshake() //nolint:errcheck // cut short by the close below
	buf := make([]byte, 16<<10)
	n, err := io.ReadAtLeast(s, buf, 5)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	c.Close()
	return buf[:n]
}

// sniffBytes runs sniff on a connection that sends in and ends.
func sniffBytes(in []byte) (string, []byte, []byte) {
	c, s := net.Pipe()
	defer c.Close()
	go func() {
		s.Write(in) //nolint:errcheck
		s.Close()
	}()
	r := bufio.NewReaderSize(c, 64<<10)
	name, seen := sniff(context.Background(), c, r)
	rest, _ := r.Peek(r.Buffered())
	return name, seen, rest
}

func TestSniffFindsTheNameAndKeepsTheBytes(t *testing.T) {
	hello := clientHello(t, "api.github.com")
	name, seen, rest := sniffBytes(hello)
	if name != "api.github.com" {
		t.Errorf("SNI: %q", name)
	}
	if !bytes.Equal(append(seen, rest...), hello) {
		t.Error("the ClientHello's bytes were not all kept for the upstream")
	}
	req := []byte("GET /x HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\n\r\n")
	name, seen, rest = sniffBytes(req)
	if name != "example.com" || len(seen) != 0 || !bytes.Equal(rest, req) {
		t.Errorf("HTTP: name %q, consumed %q, kept %q", name, seen, rest)
	}
	for _, in := range [][]byte{[]byte("SSH-2.0-OpenSSH_9.2\r\n"), {0x16, 0x03, 0x01, 0x00}, []byte("GET / HTTP/1.1\r\n")} {
		if name, _, _ := sniffBytes(in); name != "" {
			t.Errorf("%q gave the name %q", in, name)
		}
	}
}

func FuzzSniff(f *testing.F) {
	f.Add(clientHello(f, "example.com"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.0\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x03, 0x40, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		_, seen, rest := sniffBytes(in)
		// Whatever was read is handed on, in order.
		if got := append(append([]byte(nil), seen...), rest...); !bytes.HasPrefix(in, got) {
			t.Fatalf("sniff changed the stream: in %q, out %q", in, got)
		}
	})
}
