package netstack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// maxSniff bounds what is read of a connection's first bytes to find the
// name it asks for: a TLS ClientHello or the head of an HTTP request.
const maxSniff = 16 << 10

// sniffWait is how long a connection's first bytes are waited for. A
// protocol in which the server speaks first (SSH, SMTP) sends nothing
// until it hears from the server: it is decided by address alone after
// this wait (and without it on the ports such protocols use).
const sniffWait = 300 * time.Millisecond

var errStop = errors.New("stop")

// sniff reads the name a connection's first bytes ask for: TLS SNI or the
// HTTP Host header ("" if neither). The bytes it read stay in r for the
// relay. The crypto/tls and net/http parsers read them, so a name is what
// a server would see.
func sniff(ctx context.Context, conn net.Conn, r *bufio.Reader) (string, []byte) {
	conn.SetReadDeadline(time.Now().Add(sniffWait))
	defer conn.SetReadDeadline(time.Time{})
	head, err := r.Peek(1)
	if err != nil {
		return "", nil
	}
	if head[0] == 0x16 { // TLS handshake record
		var seen bytes.Buffer
		name := ""
		srv := tls.Server(replayConn{Conn: conn, r: io.TeeReader(io.LimitReader(r, maxSniff), &seen)}, &tls.Config{
			GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
				name = hi.ServerName
				return nil, errStop
			},
		})
		srv.HandshakeContext(ctx) //nolint:errcheck // stopped on purpose once the hello is read
		return name, seen.Bytes()
	}
	// HTTP/1: wait for the end of the head, then parse it.
	for n := 64; n <= maxSniff; n *= 2 {
		buf, err := r.Peek(min(n, maxSniff))
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(buf[:i+4])))
			if err != nil {
				return "", nil
			}
			host, _, err := net.SplitHostPort(req.Host)
			if err != nil {
				host = req.Host
			}
			return host, nil
		}
		if err != nil || !looksLikeHTTP(buf) {
			return "", nil
		}
	}
	return "", nil
}

// looksLikeHTTP tells the start of an HTTP/1 request line, so that other
// protocols are not waited on.
func looksLikeHTTP(b []byte) bool {
	for _, m := range []string{"GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "} {
		n := min(len(b), len(m))
		if bytes.Equal(b[:n], []byte(m[:n])) {
			return true
		}
	}
	return false
}

// replayConn feeds a TLS server the recorded bytes and swallows what it
// writes (an alert, after the stop): nothing reaches the guest.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c replayConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c replayConn) Write(p []byte) (int, error) { return len(p), nil }
func (c replayConn) Close() error                { return nil }
