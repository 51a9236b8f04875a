// Package flock takes flock(2) locks that wait no longer than a context.
// Every lock of the data root (sandbox records, image layers, the pool
// maintainer) waits this way, so a stuck holder turns into a deadline
// error instead of a hung command.
//
// Host side; it imports only x/sys.
package flock

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// Wait takes a lock on fd (how is unix.LOCK_SH or unix.LOCK_EX), trying
// again with a growing pause while another holds it, until ctx ends. A
// cancelled ctx still gets one try, so TryLock is Wait with a done ctx.
func Wait(ctx context.Context, fd int, how int) error {
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		err := unix.Flock(fd, how|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}
