package image

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/flock"
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
	if err := flock.Wait(ctx, int(f.Fd()), how); err != nil {
		f.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting for image store lock %s: %w", name, errdefs.ErrDeadlineExceeded)
		}
		return nil, fmt.Errorf("image store lock %s: %w", name, err)
	}
	return func() { f.Close() }, nil
}

// Hold keeps layers from being pruned until the returned function is
// called: a sandbox being created holds it from Resolve until its state
// (which names the layers it uses) is saved.
func (s *Store) Hold(ctx context.Context) (func(), error) {
	return s.lock(ctx, "store", false)
}
