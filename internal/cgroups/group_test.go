//go:build linux

package cgroups

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// TestRealGroup creates a group on this host, puts a process in it, checks
// the limits as the kernel shows them, and destroys it with the process
// still running.
func TestRealGroup(t *testing.T) {
	testutil.RequireRoot(t)
	l, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	testutil.Require(t, l.Probe() == nil, "cgroup controllers memory, pids, cpu usable")
	rel := "agentkernel/test-" + strconv.Itoa(os.Getpid())
	g, err := l.Create(rel, Limits{MemoryBytes: 64 << 20, Pids: 16, CPUQuotaUs: 25000, CPUPeriodUs: 100000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Destroy(t.Context()) })

	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if err := g.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	procs, err := g.Procs()
	if err != nil || len(procs) != 1 || procs[0] != cmd.Process.Pid {
		t.Fatalf("procs %v %v", procs, err)
	}
	for _, d := range g.Dirs {
		for _, c := range d.Controllers {
			var file, want string
			switch {
			case c == Memory && d.Version == 1:
				file, want = "memory.limit_in_bytes", "67108864"
			case c == Memory:
				file, want = "memory.max", "67108864"
			case c == Pids:
				file, want = "pids.max", "16"
			case c == CPU && d.Version == 1:
				file, want = "cpu.cfs_quota_us", "25000"
			case c == CPU:
				file, want = "cpu.max", "25000 100000"
			}
			b, err := os.ReadFile(filepath.Join(d.Path, file))
			if err != nil || strings.TrimSpace(string(b)) != want {
				t.Errorf("%s/%s = %q %v, want %q", d.Path, file, b, err, want)
			}
		}
		self, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cgroup")
		if !strings.Contains(string(self), rel) {
			t.Errorf("process not in %s: %s", rel, self)
		}
	}
	if err := g.Destroy(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("process in the group survived Destroy")
	}
	for _, p := range g.Paths() {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists: %v", p, err)
		}
	}
	if err := g.Destroy(t.Context()); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

// TestJoinThread moves one locked thread into a group through host-opened
// tasks files and checks that a process it forks starts inside.
func TestJoinThread(t *testing.T) {
	testutil.RequireRoot(t)
	l, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	testutil.Require(t, l.Probe() == nil, "cgroup controllers memory, pids, cpu usable")
	rel := "agentkernel/join-" + strconv.Itoa(os.Getpid())
	g, err := l.Create(rel, Limits{Pids: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Destroy(t.Context()) })
	files, err := g.TaskFiles()
	if err != nil {
		t.Fatal(err)
	}
	v2, err := g.V2Dir()
	if err != nil {
		t.Fatal(err)
	}
	if v2 != nil {
		v2.Close()
		t.Skip("pids is on cgroup v2 here: CLONE_INTO_CGROUP is used instead")
	}
	type res struct {
		pid int
		err error
	}
	rc := make(chan res, 1)
	var join func()
	join = func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if syscall.Gettid() == os.Getpid() {
			// This is the main thread, which must stay out of the group (the
			// test process could not leave it again). Keep it locked here so
			// the retry necessarily runs on another thread.
			done := make(chan struct{})
			go func() { join(); close(done) }()
			<-done
			runtime.UnlockOSThread()
			return
		}
		for _, f := range files {
			if err := JoinThread(int(f.Fd())); err != nil {
				rc <- res{err: err}
				return
			}
		}
		cmd := exec.Command("sleep", "60")
		err := cmd.Start()
		if err != nil {
			rc <- res{err: err}
			return
		}
		go cmd.Wait()
		rc <- res{pid: cmd.Process.Pid}
	}
	go join()
	r := <-rc
	for _, f := range files {
		f.Close()
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { syscall.Kill(r.pid, syscall.SIGKILL) })
	cg, _ := os.ReadFile("/proc/" + strconv.Itoa(r.pid) + "/cgroup")
	if !strings.Contains(string(cg), "pids:/"+rel) {
		t.Errorf("child not in %s:\n%s", rel, cg)
	}
	self, _ := os.ReadFile("/proc/self/cgroup")
	if strings.Contains(string(self), rel) {
		t.Errorf("the whole test process moved:\n%s", self)
	}
	// The joined thread ends with its goroutine; then only the child is left.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		procs, _ := g.Procs()
		if len(procs) == 1 && procs[0] == r.pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group holds %v, want only %d", procs, r.pid)
		}
	}
	if err := g.Destroy(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// The shared parent directory lives exactly as long as its groups, and a
// group is created even if the parent vanished in between.
func TestSharedParentRemovedWithLastGroup(t *testing.T) {
	testutil.RequireRoot(t)
	l, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	testutil.Require(t, l.Probe() == nil, "cgroup controllers memory, pids, cpu usable")
	parent := "agentkernel-test-" + strconv.Itoa(os.Getpid())
	lim := Limits{Pids: 16}
	a, err := l.Create(parent+"/a", lim)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Create(parent+"/b", lim)
	if err != nil {
		a.Destroy(t.Context())
		t.Fatal(err)
	}
	parentDir := filepath.Dir(a.Dirs[0].Path)
	if err := a.Destroy(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(parentDir); err != nil {
		t.Fatalf("parent removed while group b still exists: %v", err)
	}
	if err := b.Destroy(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(parentDir); !os.IsNotExist(err) {
		t.Fatalf("parent %s left after its last group: %v", parentDir, err)
	}
	// Create makes the parent again.
	c, err := l.Create(parent+"/c", lim)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Destroy(t.Context()); err != nil {
		t.Fatal(err)
	}
}
