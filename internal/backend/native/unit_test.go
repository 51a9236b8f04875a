//go:build linux

package native

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/procfs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// TestSlotsConcurrent allocates uid ranges from many goroutines, each with
// its own lock file handle (as separate processes would): no range is
// handed out twice, releases free them, and stale ones are reclaimed.
func TestSlotsConcurrent(t *testing.T) {
	root := t.TempDir()
	s := slots{dir: filepath.Join(root, "uids")}
	const n = 16
	got := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		dir := filepath.Join(root, "sb", string(rune('a'+i)))
		os.MkdirAll(dir, 0o700)
		wg.Go(func() {
			slot, fresh, err := s.acquire(slotOwner{ID: dir, Dir: dir}, -1)
			if err != nil || !fresh {
				t.Errorf("acquire: %d %v %v", slot, fresh, err)
			}
			got[i] = slot
		})
	}
	wg.Wait()
	sorted := slices.Clone(got)
	slices.Sort(sorted)
	if !slices.Equal(slices.Compact(sorted), sorted) || sorted[n-1] != n-1 {
		t.Fatalf("slots %v: duplicates or gaps", got)
	}
	// The owner gets its own slot back; another owner does not.
	a := filepath.Join(root, "sb", "a")
	if slot, fresh, _ := s.acquire(slotOwner{ID: a, Dir: a}, got[0]); slot != got[0] || fresh {
		t.Errorf("re-acquire: %d %v", slot, fresh)
	}
	other := filepath.Join(root, "sb", "other")
	os.MkdirAll(other, 0o700)
	if slot, _, _ := s.acquire(slotOwner{ID: other, Dir: other}, got[0]); slot == got[0] {
		t.Errorf("another owner got slot %d", slot)
	}
	// Releasing frees the lowest slot for the next sandbox.
	if err := s.release(got[0], a); err != nil {
		t.Fatal(err)
	}
	if err := s.release(got[1], "not-the-owner"); err != nil {
		t.Fatal(err)
	}
	next := filepath.Join(root, "sb", "next")
	os.MkdirAll(next, 0o700)
	if slot, _, _ := s.acquire(slotOwner{ID: next, Dir: next}, -1); slot != got[0] {
		t.Errorf("freed slot %d not reused (got %d)", got[0], slot)
	}
	// A slot whose sandbox directory vanished is reclaimed.
	os.RemoveAll(filepath.Join(root, "sb", "b"))
	late := filepath.Join(root, "sb", "late")
	os.MkdirAll(late, 0o700)
	if slot, _, _ := s.acquire(slotOwner{ID: late, Dir: late}, -1); slot != got[1] {
		t.Errorf("stale slot %d not reclaimed (got %d)", got[1], slot)
	}
	if ids := slotIDs(3); ids.UID != 1<<28+3*65536 || ids.Size != 65536 || ids.rootless() {
		t.Errorf("slotIDs(3) = %+v", ids)
	}
	if last := slotIDs(maxSlots - 1); int64(last.UID)+int64(last.Size) > 1<<32-1 {
		t.Errorf("last slot ends past the uid space: %+v", last)
	}
}

func TestShiftOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	dir := t.TempDir()
	from, to := slotIDs(1), slotIDs(2)
	f := filepath.Join(dir, "f")
	os.WriteFile(f, nil, 0o755)
	os.Lchown(f, from.UID+1000, from.GID+5)
	os.Chmod(f, 0o755|os.ModeSetuid) // after chown, which clears it
	os.Symlink("f", filepath.Join(dir, "l"))
	os.Lchown(filepath.Join(dir, "l"), from.UID, from.GID)
	os.Lchown(dir, 0, 0)
	if err := shiftOwnership(dir, from, to); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Lstat(f)
	uid, gid := owner(st)
	if uid != to.UID+1000 || gid != to.GID+5 || st.Mode()&os.ModeSetuid == 0 {
		t.Errorf("f: %d:%d %v", uid, gid, st.Mode())
	}
	if st, _ := os.Lstat(dir); func() bool { u, _ := owner(st); return u != 0 }() {
		t.Error("an id outside the range was shifted")
	}
}

func TestAlive(t *testing.T) {
	_, start, err := procfs.Stat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{})
	if !b.Alive(context.Background(), nil, &sandbox.Runtime{PID: os.Getpid(), StartTime: start}) {
		t.Error("self not alive")
	}
	if b.Alive(context.Background(), nil, &sandbox.Runtime{PID: os.Getpid(), StartTime: start + 1}) {
		t.Error("start time not compared")
	}
}

func TestKernelVersion(t *testing.T) {
	for in, want := range map[string][2]int{"6.18.44-fc-v657": {6, 18}, "5.12.0": {5, 12}, "5.4": {5, 4}, "4.19.0-21-amd64": {4, 19}} {
		if got := kernelVersion(in); got != want {
			t.Errorf("%s: %v", in, got)
		}
	}
}

// TestSocketLongPath listens and dials under a directory far longer than
// a socket address holds.
func TestSocketLongPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("x", 80), strings.Repeat("y", 80))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, socketName)
	f, err := listenUnix(p)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if st, err := os.Lstat(p); err != nil || st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket file: %v %v", st.Mode(), err)
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := dialUnix(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "hi" {
		t.Errorf("got %q", b)
	}
	// A stale socket file is replaced.
	f2, err := listenUnix(p)
	if err != nil {
		t.Fatalf("relisten: %v", err)
	}
	f2.Close()
}

// TestInitConfigRootless: as an ordinary user the init stage gets paths,
// not cloned trees, and binds keep their order and flags.
func TestInitConfigRootless(t *testing.T) {
	src := t.TempDir()
	file := filepath.Join(src, "f")
	os.WriteFile(file, nil, 0o644)
	spec := &sandbox.Spec{
		Name: "cfg", Dir: t.TempDir(),
		Config: sandbox.Config{Seccomp: sandbox.SeccompStrict, ReadOnlyRoot: true,
			Mounts: []sandbox.Mount{{Source: src, Target: "/workspace"}, {Source: file, Target: "/etc/f", ReadOnly: true}}},
		RootFS: sandbox.RootFS{Lowers: []string{"/l1", "/l2"}, Binds: []sandbox.Mount{{Source: "/usr", Target: "/usr"}}},
	}
	cfg, files, err := buildInitConfig(spec, rootlessIDs())
	if err != nil || len(files) != 0 {
		t.Fatalf("%v %v", files, err)
	}
	b, _ := json.Marshal(cfg)
	var back initConfig
	json.Unmarshal(b, &back)
	if back.TTYGid != -1 || back.Seccomp != "strict" || !back.ReadOnlyRoot || back.Hostname != "cfg" {
		t.Errorf("config %+v", back)
	}
	if len(back.Lowers) != 2 || back.Lowers[0].Path != "/l1" || back.Overlay.Path != filepath.Join(spec.Dir, overlayName) {
		t.Errorf("layers %+v %+v", back.Lowers, back.Overlay)
	}
	want := []bind{
		{Source: source{Path: "/usr"}, Target: "/usr", ReadOnly: true},
		{Source: source{Path: src}, Target: "/workspace"},
		{Source: source{Path: file}, Target: "/etc/f", ReadOnly: true, File: true},
	}
	if !slices.Equal(back.Binds, want) {
		t.Errorf("binds %+v", back.Binds)
	}
	spec.Config.Mounts = []sandbox.Mount{{Source: src, Target: "/a/../../etc"}}
	if _, _, err := buildInitConfig(spec, rootlessIDs()); err == nil {
		t.Error("a target with .. accepted")
	}
}

func owner(fi os.FileInfo) (int, int) {
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}
