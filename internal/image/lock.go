package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// lock takes a flock on images/locks/<name>, shared or exclusive, waiting
// until ctx ends. flock locks belong to the open file, so they exclude
// goroutines of one process as well as other processes.
func (s *Store) lock(ctx context.Context, name string, exclusive bool) (func(), error) {
	dir := s.dir("locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	f, err := os.OpenFile(dir+"/"+name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for delay := time.Millisecond; ; delay = min(delay*2, 100*time.Millisecond) {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("image store lock %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for image store lock %s: %w", name, errdefs.ErrDeadlineExceeded)
		case <-time.After(delay):
		}
	}
}

// Hold keeps layers from being pruned until the returned function is
// called: a sandbox being created holds it from Resolve until its state
// (which names the layers it uses) is saved.
func (s *Store) Hold(ctx context.Context) (func(), error) {
	return s.lock(ctx, "store", false)
}
