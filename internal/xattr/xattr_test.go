package xattr

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestGetAndList(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(p, "user.a", []byte("one"), 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	if err := unix.Lsetxattr(p, "user.b", make([]byte, 3000), 0); err != nil {
		t.Fatal(err)
	}
	names, err := List(func(b []byte) (int, error) { return unix.Llistxattr(p, b) })
	if err != nil || !slices.Contains(names, "user.a") || !slices.Contains(names, "user.b") {
		t.Fatalf("List = %v, %v", names, err)
	}
	v, err := Get(func(b []byte) (int, error) { return unix.Lgetxattr(p, "user.b", b) })
	if err != nil || len(v) != 3000 {
		t.Fatalf("Get = %d bytes, %v", len(v), err)
	}
	if _, err := Get(func(b []byte) (int, error) { return unix.Lgetxattr(p, "user.none", b) }); err == nil {
		t.Fatal("a missing attribute read without error")
	}
	// A value that grows between the size query and the read is read again.
	calls := 0
	v, err = Get(func(b []byte) (int, error) {
		calls++
		if calls == 2 {
			return 0, unix.ERANGE
		}
		return unix.Lgetxattr(p, "user.a", b)
	})
	if err != nil || string(v) != "one" || calls != 4 {
		t.Fatalf("retry: %q %v after %d calls", v, err, calls)
	}
}
