package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// HostState is what a test run might leak on the host: processes in other
// pid namespaces, mounts, agentkernel cgroups, network interfaces and
// namespaces, and agentkernel temp dirs.
type HostState struct {
	items map[string]bool
}

// Snapshot records the host's current state.
func Snapshot() HostState {
	s := HostState{items: map[string]bool{}}
	add := func(kind, v string) { s.items[kind+": "+v] = true }

	self, _ := os.Readlink("/proc/self/ns/pid")
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		ns, err := os.Readlink(filepath.Join("/proc", p.Name(), "ns", "pid"))
		if err != nil {
			continue
		}
		// Sandboxes live in pid namespaces of their own; VMMs in ours.
		comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
		if ns == self && !strings.HasPrefix(string(comm), "qemu-system") {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		add("process", fmt.Sprintf("pid %s %s %q", p.Name(), ns, strings.ReplaceAll(string(cmd), "\x00", " ")))
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 4 {
				add("mount", fields[4])
			}
		}
		f.Close()
	}
	hier, _ := filepath.Glob("/sys/fs/cgroup/*/agentkernel")
	if _, err := os.Stat("/sys/fs/cgroup/agentkernel"); err == nil {
		hier = append(hier, "/sys/fs/cgroup/agentkernel")
	}
	for _, h := range hier {
		filepath.WalkDir(h, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() { // the shared parent too: it goes with its last group
				add("cgroup", p)
			}
			return nil
		})
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			add("network interface", i.Name)
		}
	}
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			add("netns", e.Name())
		}
	}
	if ents, err := os.ReadDir(os.TempDir()); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "agentkernel") && !strings.HasPrefix(e.Name(), "agentkernel-test-bin-") {
				add("tempdir", e.Name())
			}
		}
	}
	return s
}

// LeakedSince lists what exists now but did not in before.
func (before HostState) LeakedSince() []string {
	now := Snapshot()
	var leaked []string
	for it := range now.items {
		if !before.items[it] {
			leaked = append(leaked, it)
		}
	}
	slices.Sort(leaked)
	return leaked
}

// CheckNoLeaks fails t if anything appeared on the host since before,
// allowing a few seconds for the kernel to release what is being torn down.
// It sees the whole host, so it assumes no other test binary starts
// sandboxes meanwhile: scripts/test.sh runs packages one at a time (-p 1).
func CheckNoLeaks(t testing.TB, before HostState) {
	t.Helper()
	var leaked []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		leaked = before.LeakedSince()
		if len(leaked) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(leaked) > 0 {
		t.Errorf("leaked on the host:\n  %s", strings.Join(leaked, "\n  "))
	}
}
