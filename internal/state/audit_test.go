package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

func TestAuditAppendAndBound(t *testing.T) {
	old := MaxAuditSize
	MaxAuditSize = 4 << 10
	t.Cleanup(func() { MaxAuditSize = old })
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(s.Dir("box"), 0o700); err != nil {
		t.Fatal(err)
	}
	if b, err := s.ReadAudit("box"); err != nil || b != nil {
		t.Fatalf("empty log: %q %v", b, err)
	}
	// Concurrent appenders, well past the bound: every line stays whole,
	// the file stays bounded, and the newest lines survive in order.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				line, _ := json.Marshal(map[string]any{"w": w, "i": i, "pad": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"})
				if err := s.AppendAudit("box", line); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.AppendAudit("box", []byte(`{"w":9,"i":0}`)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(s.Dir("box"), auditFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > MaxAuditSize || fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit log %d bytes mode %v, want at most %d and 0600", fi.Size(), fi.Mode().Perm(), MaxAuditSize)
	}
	b, err := s.ReadAudit("box")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if len(lines) < 10 {
		t.Fatalf("only %d lines kept", len(lines))
	}
	lastOf := map[int]int{}
	for _, l := range lines {
		var e struct{ W, I int }
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatalf("broken line %q: %v", l, err)
		}
		if prev, ok := lastOf[e.W]; ok && e.I <= prev {
			t.Fatalf("writer %d: %d after %d", e.W, e.I, prev)
		}
		lastOf[e.W] = e.I
	}
	if string(lines[len(lines)-1]) != `{"w":9,"i":0}` {
		t.Errorf("newest line %q, want the last one appended", lines[len(lines)-1])
	}

	// A removed sandbox's log is not re-created.
	if err := s.Delete("box"); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit("box", []byte(`{}`)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("append after delete: %v", err)
	}
	if _, err := os.Stat(s.Dir("box")); !os.IsNotExist(err) {
		t.Fatalf("sandbox dir re-created: %v", err)
	}
	if _, err := s.ReadAudit("box"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("read after delete: %v", err)
	}
}

func BenchmarkAppendAudit(b *testing.B) {
	s, _ := Open(b.TempDir())
	os.MkdirAll(s.Dir("box"), 0o700)
	line := []byte(fmt.Sprintf(`{"timestamp":"2026-01-01T00:00:00Z","type":"command_executed","command":["true"],"exit_code":0,"pad":%q}`, "x"))
	for b.Loop() {
		if err := s.AppendAudit("box", line); err != nil {
			b.Fatal(err)
		}
	}
}
