//go:build linux

package firecracker

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// listenVsock serves the hybrid vsock socket at path.
func (f *fake) listenVsock(path string) error {
	l, err := net.Listen("unix", path)
	if err != nil {
		return faultf("Cannot create backend for vsock device: UnixBind(%v)", err)
	}
	f.vsockLn = l
	go func() {
		hostPort := uint32(1 << 30)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go f.vsockConn(c, hostPort)
			hostPort++
		}
	}()
	return nil
}

// vsockConn is one host-initiated connection: the CONNECT line as
// Firecracker reads it (ten bytes, then a byte at a time to the end of
// the line, 32 at most), then the guest's side.
func (f *fake) vsockConn(c net.Conn, hostPort uint32) {
	defer c.Close()
	buf := make([]byte, 10, 32)
	if _, err := io.ReadFull(c, buf); err != nil {
		return
	}
	for buf[len(buf)-1] != '\n' && len(buf) < cap(buf) {
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		buf = append(buf, b[0])
	}
	words := strings.Fields(string(buf))
	if len(words) < 2 || strings.ToLower(words[0]) != "connect" {
		return
	}
	port, err := strconv.ParseUint(words[1], 10, 32)
	f.mu.Lock()
	running := f.state == StateRunning
	f.mu.Unlock()
	if err != nil || !running {
		return
	}
	switch port {
	case echoPort:
		fmt.Fprintf(c, "OK %d\n%s", hostPort, fakeGreeting)
		io.Copy(c, c)
	case 8:
		io.Copy(io.Discard, c) // accepted by nobody: no answer, ever
	case 9:
		io.WriteString(c, "garbage\n")
	}
}
