package conformance

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"testing"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

func (s *suite) testFiles(t *testing.T) {
	ctx := t.Context()
	data := make([]byte, 2<<20+17)
	rand.Read(data)
	data[0], data[100] = 0, 0
	if err := s.m.WriteFile(ctx, s.shared, "/tmp/files/deep/blob.bin", bytes.NewReader(data), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := s.m.ReadFile(ctx, s.shared, "/tmp/files/deep/blob.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("binary round trip: %d bytes back (err %v), want %d identical", len(got), err, len(data))
	}
	// The sandbox's own tools see the same bytes.
	if sum := s.sh(t, s.shared, "wc -c < /tmp/files/deep/blob.bin"); sum != "2097169\n" {
		t.Fatalf("size seen inside = %q", sum)
	}
	fi, err := s.m.Stat(ctx, s.shared, "/tmp/files/deep/blob.bin")
	if err != nil || fi.Size != int64(len(data)) || fi.Type != agentv1.TypeFile || fi.Mode&0o777 != 0o600 {
		t.Fatalf("stat: %+v %v", fi, err)
	}
	if err := s.m.Mkdir(ctx, s.shared, "/tmp/files/a/b/c", true); err != nil {
		t.Fatal(err)
	}
	list, err := s.m.ListDir(ctx, s.shared, "/tmp/files")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"a", "deep"}) {
		t.Fatalf("list = %v", names)
	}
	if err := s.m.RemoveFile(ctx, s.shared, "/tmp/files/deep/blob.bin", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.Stat(ctx, s.shared, "/tmp/files/deep/blob.bin"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("stat after remove: %v, want not found", err)
	}
	if err := s.m.RemoveFile(ctx, s.shared, "/tmp/files", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.ReadFile(ctx, s.shared, "/tmp/nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("read missing: %v, want not found", err)
	}
	for _, p := range []string{"tmp/rel", "/tmp/../etc/x", "/proc/self/environ", "/etc/shadow", "/root/.ssh/id_rsa", "/dev/mem", "/sys/kernel"} {
		if err := s.m.WriteFile(ctx, s.shared, p, bytes.NewReader(nil), 0); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("write %s: err = %v, want invalid argument", p, err)
		}
		if _, err := s.m.ReadFile(ctx, s.shared, p); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("read %s: err = %v, want invalid argument", p, err)
		}
	}
}
