package cgroups

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hybrid is this project's CI host: memory, pids and cpu on v1, a unified
// hierarchy with only hugetlb.
const hybrid = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
99 23 0:32 / /mnt/other\040memory rw,relatime - cgroup cgroup rw,memory
`

// systemd is a typical systemd host: pure v2, plus the usual v1 layout of
// an older one with co-mounted cpu,cpuacct.
const pureV2 = `22 1 0:21 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

const coMounted = `25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:7 - cgroup cgroup rw,cpu,cpuacct
26 24 0:23 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
27 24 0:24 / /sys/fs/cgroup/my\040pids rw - cgroup cgroup rw,xattr,pids
`

func parse(t *testing.T, s string) *Layout {
	t.Helper()
	hs, err := ParseMountinfo(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return &Layout{Hierarchies: hs}
}

func TestParseHybrid(t *testing.T) {
	l := parse(t, hybrid)
	if n := len(l.Hierarchies); n != 7 { // cpu cpuacct cpuset memory devices pids unified; not systemd, not the memory bind
		t.Fatalf("got %d hierarchies: %+v", n, l.Hierarchies)
	}
	// The unified hierarchy's controllers come from cgroup.controllers.
	for i, h := range l.Hierarchies {
		if h.Version == 2 {
			if h.Path != "/sys/fs/cgroup/unified" {
				t.Errorf("v2 at %s", h.Path)
			}
			l.Hierarchies[i].Controllers = []string{"hugetlb"}
		}
	}
	for c, want := range map[string]string{Memory: "/sys/fs/cgroup/memory", Pids: "/sys/fs/cgroup/pids", CPU: "/sys/fs/cgroup/cpu"} {
		h, ok := l.For(c)
		if !ok || h.Path != want || h.Version != 1 {
			t.Errorf("For(%s) = %+v %v, want v1 at %s", c, h, ok, want)
		}
	}
	if _, ok := l.For("rdma"); ok {
		t.Error("rdma found")
	}
}

func TestParsePureV2(t *testing.T) {
	l := parse(t, pureV2)
	if len(l.Hierarchies) != 1 || l.Hierarchies[0].Version != 2 {
		t.Fatalf("%+v", l.Hierarchies)
	}
	l.Hierarchies[0].Controllers = []string{"cpuset", "cpu", "io", "memory", "pids"}
	for _, c := range []string{Memory, Pids, CPU} {
		if h, ok := l.For(c); !ok || h.Version != 2 || h.Path != "/sys/fs/cgroup" {
			t.Errorf("For(%s) = %+v", c, h)
		}
	}
}

func TestParseCoMountedAndEscapes(t *testing.T) {
	l := parse(t, coMounted)
	h, ok := l.For(CPU)
	if !ok || h.Path != "/sys/fs/cgroup/cpu,cpuacct" || !slices.Equal(h.Controllers, []string{"cpu", "cpuacct"}) {
		t.Errorf("cpu: %+v", h)
	}
	h, ok = l.For(Pids)
	if !ok || h.Path != "/sys/fs/cgroup/my pids" || !slices.Equal(h.Controllers, []string{"pids"}) {
		t.Errorf("pids: %+v (xattr must not count as a controller)", h)
	}
	// cpu and cpuacct share one directory per group.
	lim := Limits{CPUQuotaUs: 50000, CPUPeriodUs: 100000}
	if got := lim.controllers(); !slices.Equal(got, []string{CPU}) {
		t.Errorf("controllers %v", got)
	}
}

func TestProbeReportsMissing(t *testing.T) {
	l := parse(t, "")
	err := l.Probe()
	if err == nil || !strings.Contains(err.Error(), "memory") || !strings.Contains(err.Error(), "pids") {
		t.Fatalf("Probe on an empty layout: %v", err)
	}
}

// TestCreateV2Fake drives the v2 code on a fake tree of plain files: it
// must enable the controllers in every ancestor and write the limits.
func TestCreateV2Fake(t *testing.T) {
	root := t.TempDir()
	group := filepath.Join(root, "agentkernel", "sb1")
	if err := os.MkdirAll(group, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{
		"cgroup.subtree_control", "agentkernel/cgroup.subtree_control",
		"agentkernel/sb1/memory.max", "agentkernel/sb1/memory.swap.max", "agentkernel/sb1/pids.max",
		"agentkernel/sb1/cpu.max", "agentkernel/sb1/cgroup.procs",
	} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := &Layout{Hierarchies: []Hierarchy{{Path: root, Version: 2, Controllers: []string{"cpu", "memory", "pids"}}}}
	g, err := l.Create("agentkernel/sb1", Limits{MemoryBytes: 256 << 20, Pids: 64, CPUQuotaUs: 50000, CPUPeriodUs: 100000})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Dirs) != 1 || g.Dirs[0].Path != group {
		t.Fatalf("dirs %+v", g.Dirs)
	}
	read := func(f string) string {
		b, _ := os.ReadFile(filepath.Join(root, f))
		return string(b)
	}
	for f, want := range map[string]string{
		"cgroup.subtree_control":             "+memory +pids +cpu",
		"agentkernel/cgroup.subtree_control": "+memory +pids +cpu",
		"agentkernel/sb1/memory.max":         "268435456",
		"agentkernel/sb1/memory.swap.max":    "0",
		"agentkernel/sb1/pids.max":           "64",
		"agentkernel/sb1/cpu.max":            "50000 100000",
	} {
		if got := read(f); got != want {
			t.Errorf("%s = %q, want %q", f, got, want)
		}
	}
	if _, err := l.Create("../escape", Limits{Pids: 1}); err == nil {
		t.Error("relative escape accepted")
	}
}
