//go:build linux

package native

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/procfs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// installProber copies the conformance suite's prober into the sandbox.
func (x *box) installProber() {
	x.t.Helper()
	bin := testutil.BuildPackage(x.t, "./internal/backend/conformance/prober")
	f, err := os.Open(bin)
	if err != nil {
		x.t.Fatal(err)
	}
	defer f.Close()
	if err := x.c.WriteFile(x.t.Context(), "/tmp/prober", f, 0o755, false); err != nil {
		x.t.Fatalf("installing the prober: %v", err)
	}
}

// probe runs one prober check; ok reports whether the operation succeeded.
func (x *box) probe(args ...string) (ok bool, out string) {
	x.t.Helper()
	stdout, stderr, code := x.run(append([]string{"/tmp/prober"}, args...)...)
	if code > 1 {
		x.t.Fatalf("prober %v: exit %d: %s%s", args, code, stdout, stderr)
	}
	return code == 0, strings.TrimSpace(stdout)
}

// mustDeny fails the test unless the prober's check is refused.
func (x *box) mustDeny(args ...string) {
	x.t.Helper()
	if ok, out := x.probe(args...); ok {
		x.t.Errorf("prober %v succeeded inside the sandbox: %s", args, out)
	} else {
		x.t.Logf("prober %v: %s", args, out)
	}
}

func randName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// TestFilesystemIsolation plants secrets where a host keeps them and tries
// to read them, and to write the host's /usr, from inside.
func TestFilesystemIsolation(t *testing.T) {
	testutil.RequireRoot(t)
	home, _ := os.UserHomeDir()
	var planted []string
	for _, dir := range []string{"/root", home, os.TempDir(), "/var/tmp", "/run"} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, randName("ak-secret-"))
		if err := os.WriteFile(p, []byte("TOP SECRET\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(p) })
		planted = append(planted, p)
	}
	x := startBox(t, "fs-iso", nil)
	x.installProber()
	for _, p := range planted {
		if ok, out := x.probe("read", p); ok || strings.Contains(out, "SECRET") {
			t.Errorf("host secret %s readable inside: %s", p, out)
		}
	}
	for _, p := range []string{"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh", "/etc/ssl/private", "/work", "/root/.bashrc", "/var/lib/dpkg"} {
		if ok, _ := x.probe("read", p); ok {
			t.Errorf("%s readable inside", p)
		}
		if out := x.sh("test -e " + p + " && echo present || true"); out != "" {
			t.Errorf("%s exists inside", p)
		}
	}
	if got := x.sh("ls -A /root /home"); strings.TrimSpace(strings.ReplaceAll(got, "/root:", "")) != "/home:" {
		t.Errorf("/root and /home not empty inside:\n%s", got)
	}
	if got := x.sh("head -1 /etc/passwd"); !strings.HasPrefix(got, "root:") {
		t.Errorf("/etc/passwd: %q", got)
	}
	if got := x.sh("cat /etc/hosts"); !strings.Contains(got, "127.0.0.1\tlocalhost fs-iso") || strings.Count(got, "\n") > 1 {
		t.Errorf("/etc/hosts: %q", got)
	}
	if got := x.sh("wc -c < /etc/machine-id"); got != "33" {
		t.Errorf("machine-id: %q", got)
	}

	// The host's /usr is read-only inside and unchanged outside.
	target := "/usr/bin/" + randName("ak-escape-")
	x.mustDeny("write", target)
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		os.Remove(target)
		t.Fatalf("sandbox wrote the host's %s", target)
	}
	if _, _, code := x.run("sh", "-c", "echo x > /usr/bin/ak-x || echo x > /usr/local/bin/ak-x"); code == 0 {
		t.Error("writing under /usr succeeded")
	}
	// The sandbox's own root is writable and owned by sandbox root.
	if got := x.sh("echo hi > /root/note && stat -c '%u:%g %a' /root /root/note /tmp && cat /root/note"); got != "0:0 700\n0:0 644\n0:0 1777\nhi" {
		t.Errorf("sandbox home: %q", got)
	}
	// Landlock grants "refer": moving files between directories works.
	x.sh("mkdir -p /root/a /root/b && echo m > /root/a/f && mv /root/a/f /root/b/f && mv /root/b /tmp/b && cat /tmp/b/f")
}

// TestProcessAndHostnameIsolation checks the pid and UTS namespaces and the
// uid mapping.
func TestProcessAndHostnameIsolation(t *testing.T) {
	x := startBox(t, "pid-iso", nil)
	x.installProber()
	_, pids := x.probe("pids")
	for _, p := range strings.Split(pids, ",") {
		n, _ := strconv.Atoi(strings.TrimPrefix(p, "ok "))
		if n > 100 {
			t.Errorf("/proc shows pid %d: %s", n, pids)
		}
	}
	if n, _ := strconv.Atoi(x.sh("ps -e --no-headers | wc -l")); n == 0 || n > 6 {
		t.Errorf("ps shows %d processes", n)
	}
	if got := x.sh("tr '\\0' ' ' < /proc/1/cmdline"); !strings.HasPrefix(got, "agentkernel-agent") {
		t.Errorf("pid 1 is %q", got)
	}
	if got := x.sh("hostname; cat /etc/hostname"); got != "pid-iso\npid-iso" {
		t.Errorf("hostname: %q", got)
	}
	x.mustDeny("sethostname")

	// Root inside is an unprivileged uid outside.
	if got := x.sh("id -u; id -g"); got != "0\n0" {
		t.Errorf("ids inside: %q", got)
	}
	ex, _ := parseExtra(x.rt)
	status, err := os.ReadFile("/proc/" + strconv.Itoa(x.rt.PID) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") {
			for _, v := range f[1:] {
				n, _ := strconv.Atoi(v)
				if n < idBase || n != ex.HostUID {
					t.Errorf("host %s %v, want all %d (>= %d)", f[0], f[1:], ex.HostUID, idBase)
				}
			}
		}
		if strings.HasPrefix(line, "Groups:") && strings.TrimSpace(strings.TrimPrefix(line, "Groups:")) != "" {
			t.Errorf("host supplementary groups kept: %q", line)
		}
	}
	cg, _ := os.ReadFile("/proc/" + strconv.Itoa(x.rt.PID) + "/cgroup")
	if !strings.Contains(string(cg), "agentkernel/"+x.spec.ID) {
		t.Errorf("agent not in its cgroups:\n%s", cg)
	}
	if got := x.sh("cat /proc/self/cgroup"); strings.Contains(got, "agentkernel") {
		t.Errorf("cgroup namespace shows host paths: %s", got)
	}
}

// TestNetworkIsolation: loopback only, host services unreachable, vsock
// (this machine's platform channel) refused.
func TestNetworkIsolation(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	x := startBox(t, "net-iso", nil)
	x.installProber()
	x.mustDeny("connect", ln.Addr().String())
	if _, ifs := x.probe("ifaces"); ifs != "ok lo" {
		t.Errorf("interfaces: %q", ifs)
	}
	if got := x.sh("ls /sys/class/net"); got != "lo" {
		t.Errorf("/sys/class/net: %q", got)
	}
	// Loopback works for the sandbox's own servers.
	x.sh(`python3 - <<'EOF'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
c = socket.create_connection(s.getsockname()); c.close()
EOF`)
	out, _, code := x.run("python3", "-c", "import socket; socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)")
	if code == 0 {
		t.Errorf("AF_VSOCK socket created inside: %s", out)
	}
}

// TestEscapeAttempts tries the classic ways out and requires each to fail.
func TestEscapeAttempts(t *testing.T) {
	x := startBox(t, "escape", nil)
	x.installProber()
	x.mustDeny("mount", "/mnt")
	x.mustDeny("unshare-user")
	x.mustDeny("unshare-mount")
	x.mustDeny("reboot")
	x.mustDeny("finit_module")
	x.mustDeny("mknod", "/tmp/null2")
	x.mustDeny("bpf")
	if _, _, code := x.run("unshare", "-U", "-r", "true"); code == 0 {
		t.Error("unshare -U succeeded")
	}
	if _, _, code := x.run("unshare", "-m", "true"); code == 0 {
		t.Error("unshare -m succeeded")
	}
	// ptrace of a sibling.
	p, err := x.c.StartProcess(t.Context(), agentv1.ExecSpec{Args: []string{"sleep", "600"}})
	if err != nil {
		t.Fatal(err)
	}
	x.mustDeny("ptrace", strconv.Itoa(p.PID))
	x.mustDeny("ptrace", "1")
	// Kernel interfaces.
	x.mustDeny("write", "/proc/sysrq-trigger")
	x.mustDeny("write", "/proc/sys/kernel/hostname")
	x.mustDeny("write", "/sys/kernel/uevent_helper")
	if got := x.sh("cat /proc/keys /proc/timer_list 2>/dev/null | wc -c; find /sys/firmware /proc/acpi -mindepth 1 | wc -l"); got != "0\n0" {
		t.Errorf("masked /proc and /sys paths show content: %q", got)
	}
	// The agent's descriptors lead outside the root: its log and binary.
	if ok, _ := x.probe("write", "/proc/1/fd/1"); ok {
		t.Error("wrote the agent's log through /proc/1/fd/1")
	}
	x.mustDeny("write", "/proc/1/exe")
	// Capabilities: Docker's default bounding set without SYS_CHROOT.
	x.mustDeny("chroot", "/tmp")
	if got := x.sh("grep CapBnd /proc/self/status"); got != "CapBnd:\t00000000a00005fb" {
		t.Errorf("bounding set %q", got)
	}
	if got := x.sh("grep -E 'NoNewPrivs|Seccomp:' /proc/self/status"); got != "NoNewPrivs:\t1\nSeccomp:\t2" {
		t.Errorf("no_new_privs/seccomp: %q", got)
	}
	// Landlock: device ioctls only on terminals and /dev/null.
	if _, errs, _ := x.run("stty", "-F", "/dev/zero"); !strings.Contains(errs, "Permission denied") {
		t.Errorf("stty on /dev/zero: %q (want Landlock's EACCES)", errs)
	}
	if _, errs, _ := x.run("stty", "-F", "/dev/null"); !strings.Contains(errs, "Inappropriate ioctl") {
		t.Errorf("stty on /dev/null: %q (want ENOTTY)", errs)
	}
	// A minimal /dev.
	if got := x.sh("ls -A /dev | tr '\\n' ' '"); got != "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero" {
		t.Errorf("/dev: %q", got)
	}
	var out strings.Builder
	st, err := x.c.Exec(t.Context(), agentv1.ExecSpec{Args: []string{"tty"}, TTY: true, Rows: 24, Cols: 80}, nil, &out, &out)
	if err != nil || st.Code != 0 || !strings.HasPrefix(strings.TrimSpace(out.String()), "/dev/pts/") {
		t.Errorf("tty: %v %+v %q", err, st, out.String())
	}
}

// TestReadOnlyRootStrict runs the restrictive profile with a writable and
// a read-only mount.
func TestReadOnlyRootStrict(t *testing.T) {
	testutil.RequireRoot(t)
	rw, ro := t.TempDir(), t.TempDir()
	os.Chmod(rw, 0o777) // the sandbox's uid range is "other" here
	os.WriteFile(filepath.Join(ro, "f"), []byte("read me\n"), 0o644)
	x := startBox(t, "strict", func(c *sandbox.Config) {
		p, _ := sandbox.LookupProfile(sandbox.ProfileRestrictive)
		*c = p.Config()
		c.Mounts = []sandbox.Mount{{Source: rw, Target: "/data"}, {Source: ro, Target: "/ref", ReadOnly: true},
			{Source: filepath.Join(ro, "f"), Target: "/etc/ak/single-file", ReadOnly: true}}
	})
	x.installProber()
	x.mustDeny("write", "/etc/escape")
	x.mustDeny("write", "/root/x")
	x.mustDeny("write", "/ref/x")
	x.mustDeny("chroot", "/tmp")
	for _, p := range []string{"/tmp/x", "/dev/shm/x", "/data/x"} {
		if ok, out := x.probe("write", p); !ok {
			t.Errorf("write %s: %s", p, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(rw, "x")); err != nil || string(b) != "escaped\n" {
		t.Errorf("rw mount not written through: %q %v", b, err)
	}
	x.mustDeny("write", "/etc/ak/single-file")
	if got := x.sh("stat -f -c %T /tmp; cat /ref/f /etc/ak/single-file"); got != "tmpfs\nread me\nread me" {
		t.Errorf("got %q", got)
	}
	if got := x.sh("grep CapBnd /proc/self/status"); got != "CapBnd:\t00000000000000eb" {
		t.Errorf("strict bounding set %q", got)
	}
	if _, _, code := x.run("python3", "-c", "import socket; socket.socket(38, 5)"); code == 0 { // AF_ALG
		t.Error("strict profile allowed an AF_ALG socket")
	}
	ex, _ := parseExtra(x.rt)
	for _, d := range ex.Cgroups {
		if slices.Contains(d.Controllers, "cpu") && d.Version == 1 {
			if b, _ := os.ReadFile(filepath.Join(d.Path, "cpu.cfs_quota_us")); strings.TrimSpace(string(b)) != "50000" {
				t.Errorf("cpu quota %q, want 50000 (50%% of one CPU)", b)
			}
		}
	}
}

// TestMemoryLimitOOM: a process over the limit is OOM-killed, the agent
// survives and serves the next exec.
func TestMemoryLimitOOM(t *testing.T) {
	x := startBox(t, "oom", func(c *sandbox.Config) { c.MemoryMB = 256 })
	ex, _ := parseExtra(x.rt)
	for _, d := range ex.Cgroups {
		if slices.Contains(d.Controllers, "memory") && d.Version == 1 {
			if b, _ := os.ReadFile(filepath.Join(d.Path, "memory.limit_in_bytes")); strings.TrimSpace(string(b)) != "268435456" {
				t.Errorf("memory limit %q", b)
			}
		}
	}
	_, _, code := x.run("sh", "-c", "head -c 600M /dev/zero | tail")
	if code != 137 {
		t.Errorf("600 MB in a 256 MB sandbox: exit %d, want 137", code)
	}
	if _, err := x.c.Version(t.Context()); err != nil {
		t.Fatalf("agent died with the OOM: %v", err)
	}
	if got := x.sh("echo alive"); got != "alive" {
		t.Errorf("exec after OOM: %q", got)
	}
}

// TestForkBomb: the pids limit stops a fork bomb; the host is fine and the
// sandbox can be stopped and removed.
func TestForkBomb(t *testing.T) {
	x := startBox(t, "forkbomb", func(c *sandbox.Config) { c.PidsLimit = 64 })
	ex, _ := parseExtra(x.rt)
	var pidsDir string
	for _, d := range ex.Cgroups {
		if slices.Contains(d.Controllers, "pids") {
			pidsDir = d.Path
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	x.c.Exec(ctx, agentv1.ExecSpec{Args: []string{"bash", "-c", "b(){ b | b & }; b; sleep 3"}, TimeoutMS: 3000}, nil, nil, nil)
	cur, _ := os.ReadFile(filepath.Join(pidsDir, "pids.current"))
	events, _ := os.ReadFile(filepath.Join(pidsDir, "pids.events"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(cur)))
	if n > 64 {
		t.Errorf("pids.current %d over the limit", n)
	}
	t.Logf("pids.current %d, events %s", n, strings.TrimSpace(string(events)))
	if f := strings.Fields(string(events)); len(f) != 2 || f[1] == "0" {
		t.Errorf("the bomb never hit the limit: pids.events %q", events)
	}
	if err := exec.Command("true").Run(); err != nil {
		t.Errorf("the host cannot fork: %v", err)
	}
	if _, err := x.c.Version(t.Context()); err != nil {
		log, _ := os.ReadFile(filepath.Join(x.spec.Dir, logName))
		t.Errorf("agent unresponsive during the bomb: %v\n%s", err, log)
	}
	// The cleanup's Stop and Remove must succeed with the bomb still going.
}

// TestStopRemoveLeavesNothing checks the host after a sandbox's life.
func TestStopRemoveLeavesNothing(t *testing.T) {
	x := startBox(t, "clean", nil)
	x.sh("echo data > /root/f; sleep 300 >/dev/null 2>&1 &")
	ex, _ := parseExtra(x.rt)
	ctx := t.Context()
	b2 := New(Options{AgentPath: x.b.opts.AgentPath}) // as another process would
	if !b2.Alive(ctx, x.spec, x.rt) {
		t.Fatal("not alive")
	}
	if err := b2.Stop(ctx, x.spec, x.rt); err != nil {
		t.Fatal(err)
	}
	if b2.Alive(ctx, x.spec, x.rt) {
		t.Error("alive after Stop")
	}
	if err := b2.Stop(ctx, x.spec, x.rt); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(x.spec.Dir, overlayName, "upper", "root", "f")); err != nil {
		t.Errorf("Stop lost the sandbox's files: %v", err)
	}
	if err := b2.Remove(ctx, x.spec); err != nil {
		t.Fatal(err)
	}
	if err := b2.Remove(ctx, x.spec); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	checkGone(t, x, ex)
}

// checkGone asserts that nothing of a sandbox remains on the host.
func checkGone(t *testing.T, x *box, ex extra) {
	t.Helper()
	if x.rt != nil {
		if _, err := os.Stat("/proc/" + strconv.Itoa(x.rt.PID)); err == nil {
			if st, start, _ := procfs.Stat(x.rt.PID); start == x.rt.StartTime && st != 'Z' {
				t.Errorf("init %d still running", x.rt.PID)
			}
		}
	}
	for _, d := range ex.Cgroups {
		if _, err := os.Stat(d.Path); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left", d.Path)
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), x.spec.Dir) || strings.Contains(string(mi), x.root) {
		t.Errorf("host mount table mentions the sandbox:\n%s", mi)
	}
	ents, _ := os.ReadDir(x.spec.Dir)
	if len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("left in spec.Dir: %v", names)
	}
	slots, _ := os.ReadDir(filepath.Join(x.root, "native", "uids"))
	if len(slots) != 0 {
		t.Errorf("uid slot not released: %v", slots)
	}
	for _, p := range procsOf(x.spec.ID) {
		t.Errorf("process %s still in the sandbox's cgroup", p)
	}
}

// procsOf lists host processes whose cgroup names the sandbox.
func procsOf(id string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cg, _ := os.ReadFile("/proc/" + e.Name() + "/cgroup")
		if strings.Contains(string(cg), id) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestPersistenceAcrossRestart: the root filesystem's changes survive
// Stop and Start, under the same uid range.
func TestPersistenceAcrossRestart(t *testing.T) {
	x := startBox(t, "persist", nil)
	x.sh("echo kept > /root/kept; mkdir -p /opt/tool && echo v1 > /opt/tool/version")
	ex1, _ := parseExtra(x.rt)
	if err := x.b.Stop(t.Context(), x.spec, x.rt); err != nil {
		t.Fatal(err)
	}
	rt, err := x.b.Start(t.Context(), x.spec)
	if err != nil {
		t.Fatal(err)
	}
	x.rt = rt
	x.c.Close()
	x.c = agentv1.NewClient(func(ctx context.Context) (net.Conn, error) { return x.b.Dial(ctx, x.spec, rt) })
	if got := x.sh("cat /root/kept /opt/tool/version; stat -c %u /root/kept"); got != "kept\nv1\n0" {
		t.Errorf("after restart: %q", got)
	}
	ex2, _ := parseExtra(rt)
	if ex1.HostUID != ex2.HostUID {
		t.Errorf("uid range changed across restart: %d -> %d", ex1.HostUID, ex2.HostUID)
	}
}

// TestDeadSandbox: a sandbox killed behind the backend's back reads as not
// alive and still stops and removes cleanly.
func TestDeadSandbox(t *testing.T) {
	x := startBox(t, "dead", nil)
	ex, _ := parseExtra(x.rt)
	if err := syscallKill(x.rt.PID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for x.b.Alive(t.Context(), x.spec, x.rt) {
		if time.Now().After(deadline) {
			t.Fatal("still alive after SIGKILL")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := x.b.Stop(t.Context(), x.spec, x.rt); err != nil {
		t.Fatal(err)
	}
	if err := x.b.Remove(t.Context(), x.spec); err != nil {
		t.Fatal(err)
	}
	checkGone(t, x, ex)
	// A stale runtime whose pid was reused is not alive either.
	if x.b.Alive(t.Context(), x.spec, &sandbox.Runtime{PID: os.Getpid(), StartTime: 1}) {
		t.Error("pid reuse not detected")
	}
}

// TestStartFailureCleansUp makes the init stage fail late (a mount target
// inside the read-only /usr) and checks nothing is left.
func TestStartFailureCleansUp(t *testing.T) {
	testutil.RequireRoot(t)
	src := t.TempDir()
	agent := testutil.BuildBinary(t, "agentkernel-agent")
	root := t.TempDir()
	x := &box{t: t, b: New(Options{AgentPath: agent}), root: root}
	cfg, _, _ := sandbox.Resolve(sandbox.Options{Network: new(false), Mounts: []sandbox.Mount{{Source: src, Target: "/usr/ak-new/dir"}}})
	fs, err := imageStore(root).Resolve(t.Context(), "host")
	if err != nil {
		t.Fatal(err)
	}
	x.spec = &sandbox.Spec{ID: randName("id"), Name: "fail", Config: cfg, RootFS: fs, Dir: filepath.Join(root, "sandboxes", "fail")}
	os.MkdirAll(x.spec.Dir, 0o700)
	_, err = x.b.Start(t.Context(), x.spec)
	if err == nil || !strings.Contains(err.Error(), "/usr/ak-new/dir") {
		t.Fatalf("start: %v", err)
	}
	t.Log(err)
	checkGone(t, x, extra{})
	for _, h := range []string{"memory", "pids", "cpu"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", h, "agentkernel", x.spec.ID)); err == nil {
			t.Errorf("cgroup left in %s", h)
		}
	}
}

// TestNetworkNeedsAPath: network mode nat without a network path to
// attach to is refused before anything is made.
func TestNetworkNeedsAPath(t *testing.T) {
	b := New(Options{AgentPath: "/nonexistent"})
	dir := t.TempDir()
	_, err := b.Start(t.Context(), &sandbox.Spec{Name: "n", Config: sandbox.Config{Network: sandbox.NetworkNAT}, Dir: dir})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("got %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
}

// TestLongStateDir: a data root so deep that the socket path is longer
// than a socket address holds.
func TestLongStateDir(t *testing.T) {
	testutil.RequireRoot(t)
	x := startBoxAt(t, "long", filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60)), nil)
	if len(socketPath(x.spec)) <= maxSunPath {
		t.Fatalf("socket path only %d bytes", len(socketPath(x.spec)))
	}
	if got := x.sh("echo ok"); got != "ok" {
		t.Errorf("got %q", got)
	}
}

// TestConcurrentStarts: sandboxes started at once get distinct uid ranges.
func TestConcurrentStarts(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	boxes := make([]*box, 4)
	errs := make(chan error, len(boxes))
	for i := range boxes {
		go func() {
			var err error
			boxes[i], err = tryStartBox(t, fmt.Sprintf("conc%d", i), root, nil)
			errs <- err
		}()
	}
	for range boxes {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	seen := map[int]bool{}
	for _, x := range boxes {
		if x == nil {
			t.Fatal("a start failed")
		}
		ex, _ := parseExtra(x.rt)
		if seen[ex.HostUID] {
			t.Errorf("uid range %d used twice", ex.HostUID)
		}
		seen[ex.HostUID] = true
		if got := x.sh("hostname"); got != x.spec.Name {
			t.Errorf("hostname %q", got)
		}
	}
}

// TestAllowPtrace: the permissive profile lets debuggers trace processes.
func TestAllowPtrace(t *testing.T) {
	x := startBox(t, "ptrace", func(c *sandbox.Config) { c.AllowPtrace = true })
	x.installProber()
	p, err := x.c.StartProcess(t.Context(), agentv1.ExecSpec{Args: []string{"sleep", "600"}})
	if err != nil {
		t.Fatal(err)
	}
	if ok, out := x.probe("ptrace", strconv.Itoa(p.PID)); !ok {
		t.Errorf("ptrace with AllowPtrace: %s", out)
	}
	x.mustDeny("mount", "/mnt")
}
