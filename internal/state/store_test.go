package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateLoadSaveDelete(t *testing.T) {
	s := newStore(t)
	rec := &Record{ID: "id-1", Name: "box", Backend: sandbox.Native, Status: sandbox.StatusCreated, CreatedAt: time.Now().UTC()}
	if err := s.Create(rec); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load("box")
	if err != nil || got.ID != "id-1" || got.Status != sandbox.StatusCreated {
		t.Fatalf("load: %+v %v", got, err)
	}
	got.Status = sandbox.StatusRunning
	got.Runtime = &sandbox.Runtime{PID: 42, StartTime: 7}
	if err := s.Save(got); err != nil {
		t.Fatal(err)
	}
	again, _ := s.Load("box")
	if again.Status != sandbox.StatusRunning || again.Runtime.PID != 42 {
		t.Fatalf("after save: %+v", again)
	}
	if err := s.Delete("box"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("box"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("load after delete: %v", err)
	}
	if err := s.Save(again); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("save after delete: %v", err)
	}
	entries, _ := os.ReadDir(s.dir)
	if len(entries) != 0 {
		t.Fatalf("left in the store: %v", entries)
	}
}

func TestConcurrentCreateOneWins(t *testing.T) {
	s := newStore(t)
	var wins, exists atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Create(&Record{ID: string(rune('a' + i)), Name: "same"})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, errdefs.ErrAlreadyExists):
				exists.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || exists.Load() != 19 {
		t.Fatalf("wins=%d exists=%d", wins.Load(), exists.Load())
	}
	recs, err := s.List()
	if err != nil || len(recs) != 1 {
		t.Fatalf("list: %d %v", len(recs), err)
	}
}

func TestLockExcludes(t *testing.T) {
	s := newStore(t)
	if err := s.Create(&Record{ID: "x", Name: "box"}); err != nil {
		t.Fatal(err)
	}
	unlock, err := s.Lock(t.Context(), "box")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(ctx, "box"); !errors.Is(err, errdefs.ErrDeadlineExceeded) {
		t.Fatalf("second lock: %v, want deadline exceeded", err)
	}
	unlock()
	unlock2, err := s.Lock(t.Context(), "box")
	if err != nil {
		t.Fatal(err)
	}
	unlock2()
	if _, err := s.Lock(t.Context(), "missing"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("lock missing: %v", err)
	}
}

func TestLockOnRemovedSandbox(t *testing.T) {
	s := newStore(t)
	s.Create(&Record{ID: "x", Name: "box"})
	unlock, _ := s.Lock(t.Context(), "box")
	got := make(chan error)
	go func() {
		_, err := s.Lock(t.Context(), "box")
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	s.Delete("box")
	s.Create(&Record{ID: "y", Name: "box"}) // re-created under the same name
	unlock()
	if err := <-got; !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("waiter on a removed sandbox: %v, want not found", err)
	}
}

func TestListSkipsTempAndCorrupt(t *testing.T) {
	s := newStore(t)
	s.Create(&Record{ID: "x", Name: "good"})
	os.MkdirAll(filepath.Join(s.dir, tmpPrefix+"half"), 0o700)
	os.MkdirAll(filepath.Join(s.dir, "corrupt"), 0o700)
	os.WriteFile(filepath.Join(s.dir, "corrupt", stateFile), []byte("{"), 0o600)
	recs, err := s.List()
	if err != nil || len(recs) != 1 || recs[0].Name != "good" {
		t.Fatalf("list: %+v %v", recs, err)
	}
	if _, err := s.Load("corrupt"); !errors.Is(err, errdefs.ErrInternal) {
		t.Fatalf("corrupt: %v", err)
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(filepath.Join(s.dir, tmpPrefix+"half"), old, old)
	if n := s.RemoveStale(time.Hour); n != 1 {
		t.Fatalf("RemoveStale = %d", n)
	}
}
