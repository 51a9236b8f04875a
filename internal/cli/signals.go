package cli

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// cancelOnSignal returns a context cancelled by the first SIGINT, SIGTERM or
// SIGHUP. Later signals are swallowed so that the cleanup the cancellation
// started (removing an ephemeral sandbox, a temp file) can finish: a second
// Ctrl-C must not leave a sandbox behind. received reports the first signal.
func cancelOnSignal(parent context.Context) (ctx context.Context, received func() os.Signal, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	var mu sync.Mutex
	var first os.Signal
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				mu.Lock()
				if first == nil {
					first = sig
				}
				mu.Unlock()
				cancel()
			case <-done:
				return
			}
		}
	}()
	received = func() os.Signal {
		mu.Lock()
		defer mu.Unlock()
		return first
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			cancel()
		})
	}
	return ctx, received, stop
}
