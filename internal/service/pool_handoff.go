package service

// A pool maintainer lingers after its work: for a while it takes the next
// runs' finished sandboxes over a unix socket in the pool directory, so a
// run in a busy loop hands its sandbox over with one round trip (≈0.1 ms)
// instead of starting a process (≈0.5 ms, the child's exec, on the run's
// path). One maintainer listens at a time (it holds maintainer.lock); a
// run that finds none starts one (Options.Background). Requests are
// acknowledged as soon as they are queued; a maintainer that goes away
// stops accepting (removes the socket) before it stops working, so no
// acknowledged request is lost, and a request it never acknowledged makes
// the run start a maintainer instead.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/flock"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

const (
	handoffSocket = "maintainer.sock"
	handoffLock   = "maintainer.lock"
	// handoffTimeout bounds a hand-off; past it the run starts a maintainer.
	handoffTimeout = 200 * time.Millisecond
)

// HandOff gives a finished run's sandbox to a lingering maintainer. An
// error means none took it.
func (m *Manager) HandOff(name string) error {
	c, err := net.DialTimeout("unix", filepath.Join(m.poolDir(), handoffSocket), handoffTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(handoffTimeout))
	if _, err := fmt.Fprintf(c, "remove %s\n", name); err != nil {
		return err
	}
	return readAck(c)
}

func readAck(c net.Conn) error {
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ok\n" {
		return fmt.Errorf("pool maintainer: %q", strings.TrimSpace(line))
	}
	return nil
}

// LingerPool keeps maintaining the pool for the runs that follow: it
// listens for hand-offs until linger passes with nothing to do (or ctx
// ends, or StopPoolMaintainer asks), removing each handed-off sandbox and
// refilling. If another maintainer already listens, it returns at once.
func (m *Manager) LingerPool(ctx context.Context, linger time.Duration) error {
	if err := os.MkdirAll(m.poolDir(), 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(m.poolDir(), handoffLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil // another maintainer listens
	}
	path := filepath.Join(m.poolDir(), handoffSocket)
	os.Remove(path) // a dead maintainer's
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return err
	}
	ln.SetUnlinkOnClose(false) // removed by hand, before the listener closes

	work := make(chan string, 64)
	idle := make(chan bool, 1) // the worker's state after each job
	done := make(chan error, 1)
	go func() {
		var errs []error
		for name := range work {
			if err := m.Remove(ctx, name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				errs = append(errs, err)
			}
			if err := m.MaintainPool(ctx); err != nil {
				errs = append(errs, err)
			}
			if len(work) == 0 {
				select {
				case idle <- true:
				default:
				}
			}
		}
		done <- errors.Join(errs...)
	}()

	last := time.Now()
	busy := false
accept:
	for ctx.Err() == nil {
		select {
		case <-idle:
			busy, last = false, time.Now()
		default:
		}
		if !busy && time.Since(last) >= linger {
			break
		}
		ln.SetDeadline(time.Now().Add(min(linger, time.Second)))
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			break
		}
		req, err := readRequest(c)
		switch {
		case err != nil:
			fmt.Fprintf(c, "error: %v\n", err)
		case req == "exit":
			fmt.Fprintln(c, "ok")
			c.Close()
			break accept
		default:
			work <- req
			busy = true
			fmt.Fprintln(c, "ok")
		}
		c.Close()
	}
	os.Remove(path) // no new requests from here on...
	ln.Close()
	close(work) // ...and the queued ones are done before we go
	return <-done
}

// readRequest reads "remove NAME" or "exit".
func readRequest(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(handoffTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\n")
	if line == "exit" {
		return line, nil
	}
	name, ok := strings.CutPrefix(line, "remove ")
	if !ok {
		return "", fmt.Errorf("unknown request %q", line)
	}
	if err := sandbox.ValidateName(name); err != nil {
		return "", err
	}
	return name, nil
}

// maintainerListening tells whether a pool maintainer lingers.
func (m *Manager) maintainerListening() bool {
	c, err := net.DialTimeout("unix", filepath.Join(m.poolDir(), handoffSocket), handoffTimeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// StopPoolMaintainer makes a lingering maintainer finish its queue and exit,
// and waits for it (until ctx ends).
func (m *Manager) StopPoolMaintainer(ctx context.Context) error {
	if c, err := net.DialTimeout("unix", filepath.Join(m.poolDir(), handoffSocket), handoffTimeout); err == nil {
		c.SetDeadline(time.Now().Add(handoffTimeout))
		fmt.Fprintln(c, "exit")
		readAck(c)
		c.Close()
	}
	lock, err := os.OpenFile(filepath.Join(m.poolDir(), handoffLock), os.O_RDWR, 0)
	if err != nil {
		return nil // there never was one
	}
	defer lock.Close()
	if err := flock.Wait(ctx, int(lock.Fd()), unix.LOCK_SH); err != nil {
		return fmt.Errorf("waiting for the pool maintainer: %w", err)
	}
	return nil
}
