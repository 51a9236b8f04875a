package qemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// DialAgent connects to a free agent port of the VM in dir and starts a
// session on it (v1.SyncSerial), ready for HTTP/2. Each port
// carries one connection, and a lock file per port, held for as long as
// the connection is open, tells which are taken — by any process. With
// every port taken it waits for one until ctx ends.
func DialAgent(ctx context.Context, dir string) (net.Conn, error) {
	c, err := takePort(ctx, dir)
	if err != nil {
		return nil, err
	}
	sc, err := v1.SyncSerial(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("agent port: %w", err)
	}
	return sc, nil
}

// SetIdentity gives the VM in dir, just restored from a saved state, its
// own identity (v1.Identity) through the control port its init serves.
func SetIdentity(ctx context.Context, dir string, id v1.Identity) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(dir, ctlSocket))
	if err != nil {
		return fmt.Errorf("control port: %w", err)
	}
	defer c.Close()
	sc, err := v1.SyncSerial(ctx, c)
	if err != nil {
		return fmt.Errorf("control port: %w", err)
	}
	return v1.SendIdentity(ctx, sc, id)
}

// takePort connects to the first agent port whose lock is free, waiting
// while none is.
func takePort(ctx context.Context, dir string) (*portConn, error) {
	socks, _ := filepath.Glob(filepath.Join(dir, "agent-*.sock"))
	if len(socks) == 0 {
		return nil, fmt.Errorf("VM in %s has no agent port: %w", dir, errdefs.ErrFailedPrecondition)
	}
	for {
		for i := range len(socks) {
			c, err := tryPort(ctx, dir, i)
			if c != nil || err != nil {
				return c, err
			}
		}
		if !Alive(dir) {
			return nil, ErrNotRunning
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("every agent port of the VM is in use: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// tryPort takes port i if its lock is free: (nil, nil) when taken.
func tryPort(ctx context.Context, dir string, i int) (*portConn, error) {
	lock, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf(agentLock, i)), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("agent port lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("agent port lock: %w", err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", AgentSocket(dir, i))
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("agent port %d: %w", i, err)
	}
	return &portConn{Conn: c, lock: lock}, nil
}

// portConn releases its port's lock when closed.
type portConn struct {
	net.Conn
	lock *os.File
	once sync.Once
}

func (c *portConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.lock.Close() })
	return err
}
