package flock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b := open(), open()
	if err := Wait(t.Context(), int(a.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	// Held: a done context gets one try and fails with its error.
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Wait(done, int(b.Fd()), unix.LOCK_SH); !errors.Is(err, context.Canceled) {
		t.Fatalf("held lock: %v", err)
	}
	// Released while waiting: the wait ends with the lock.
	go func() {
		time.Sleep(50 * time.Millisecond)
		unix.Flock(int(a.Fd()), unix.LOCK_UN)
	}()
	ctx, cancel2 := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel2()
	if err := Wait(ctx, int(b.Fd()), unix.LOCK_SH); err != nil {
		t.Fatalf("after release: %v", err)
	}
}
