package firecracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// maxAnswer bounds the handshake's answer line: "OK " and a port number.
const maxAnswer = 32

// DialAgent connects to vsock port of the guest in dir, through
// Firecracker's hybrid vsock: a connection to VsockSocket(dir), then
// "CONNECT <port>\n", which Firecracker answers "OK <host port>\n" once
// the guest accepted the connection. The returned connection is the
// guest's stream from the first byte after that line.
//
// With nothing listening on port in the guest (an agent not up yet),
// Firecracker closes the connection instead: that error is
// errdefs.ErrUnavailable, for the caller to retry.
func DialAgent(ctx context.Context, dir string, port uint32) (net.Conn, error) {
	sock := VsockSocket(dir)
	if _, err := os.Stat(sock); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("VM in %s has no vsock socket: %w", dir, errdefs.ErrFailedPrecondition)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		if !Alive(dir) {
			return nil, ErrNotRunning // its socket outlived it
		}
		return nil, fmt.Errorf("vsock: %w: %w", err, errdefs.ErrUnavailable)
	}
	if err := handshake(ctx, c, port); err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("vsock port %d: %w", port, ctx.Err())
		}
		return nil, fmt.Errorf("vsock port %d: %w", port, err)
	}
	return c, nil
}

// handshake asks Firecracker for port and reads its answer, bounded by
// ctx. The answer is read a byte at a time: the guest may speak right
// after it, and what it says belongs to the caller, not to a buffer here.
func handshake(ctx context.Context, c net.Conn, port uint32) error {
	// A deadline in the past ends a blocked read or write at once.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := fmt.Fprintf(c, "CONNECT %d\n", port); err != nil {
		return fmt.Errorf("%w: %w", err, errdefs.ErrUnavailable)
	}
	var line []byte
	for b := make([]byte, 1); ; {
		if _, err := io.ReadFull(c, b); err != nil {
			return fmt.Errorf("no answer (nothing listening in the guest?): %w: %w", err, errdefs.ErrUnavailable)
		}
		if b[0] == '\n' {
			break
		}
		if line = append(line, b[0]); len(line) > maxAnswer {
			return fmt.Errorf("answer %q...: too long: %w", line, errdefs.ErrUnavailable)
		}
	}
	if !stop() {
		return ctx.Err()
	}
	if !strings.HasPrefix(string(line), "OK ") {
		return fmt.Errorf("answer %q, want OK: %w", line, errdefs.ErrUnavailable)
	}
	return nil
}
