package agent

import (
	"net"
	"os"
	"sync"
)

// oneConnListener hands out a single connection and then blocks until it is
// closed: it lets http.Server serve one pre-connected stream. When that
// connection closes, onClose runs (the agent then shuts down).
type oneConnListener struct {
	mu     sync.Mutex
	conn   net.Conn // until accepted
	closed chan struct{}
	once   sync.Once
}

func newOneConnListener(c net.Conn, onClose func()) *oneConnListener {
	l := &oneConnListener{closed: make(chan struct{})}
	l.conn = &notifyConn{Conn: c, onClose: func() {
		onClose() // first, so Serve sees a requested stop, not a listener error
		l.Close()
	}}
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return fileAddr("conn-fd") }

// notifyConn reports its Close (done by http.Server when the peer hangs up).
type notifyConn struct {
	net.Conn
	once    sync.Once
	onClose func()
}

func (c *notifyConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.onClose)
	return err
}

// fileConn is a net.Conn over a non-socket stream such as a serial port.
type fileConn struct{ *os.File }

func (c *fileConn) LocalAddr() net.Addr  { return fileAddr(c.Name()) }
func (c *fileConn) RemoteAddr() net.Addr { return fileAddr(c.Name()) }

type fileAddr string

func (a fileAddr) Network() string { return "file" }
func (a fileAddr) String() string  { return string(a) }
