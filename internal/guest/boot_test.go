//go:build linux

package guest

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
	"github.com/agentkernel-go/agentkernel/internal/vmm/qemu"
)

// The kernel and initramfs this package prepares boot under QEMU's
// microvm machine, and the agent, as the guest's init, serves the host
// over the virtio-serial port: exec and file reads answer from inside a
// guest with its own kernel, CPUs and memory.
func TestGuestBootsAndServesTheAgent(t *testing.T) {
	ctx := vmTest(t)

	g := preparedGuest(t)
	dir := t.TempDir()
	initrd := bootInitrd(t, g.Initrd, testutil.BuildBinary(t, "agentkernel-agent"), filepath.Join(dir, "boot.img"))
	accel, why := qemu.ChooseAccel()
	t.Logf("accelerator: %s", why)

	vmDir := filepath.Join(dir, "vm")
	start := time.Now()
	vm, err := qemu.Start(ctx, qemu.Config{
		Dir: vmDir, Kernel: filepath.Join(filepath.Dir(g.Kernel), VmlinuxFile), Initrd: initrd,
		Cmdline: "agentkernel.hostname=first-light",
		VCPUs:   2, MemoryMiB: 256, Accel: accel, AgentPort: "agentkernel", Console: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Kill()
		vm.Close()
		if err := qemu.Remove(vmDir); err != nil {
			t.Error(err)
		}
	})
	console := func() string {
		b, _ := os.ReadFile(qemu.ConsoleLog(vmDir))
		return string(b)
	}
	c := agentv1.NewClient(func(ctx context.Context) (net.Conn, error) { return qemu.DialAgent(ctx, vmDir) })
	defer c.Close()

	var stdout, stderr bytes.Buffer
	st, err := c.Exec(ctx, agentv1.ExecSpec{Args: []string{"/init", "-version"}}, nil, &stdout, &stderr)
	if err != nil || st.Code != 0 {
		t.Fatalf("exec in the guest: %v, %+v, stderr %q; guest console:\n%s", err, st, stderr.String(), console())
	}
	t.Logf("first exec answered %v after start", time.Since(start))
	if !strings.HasPrefix(stdout.String(), "agentkernel-agent ") {
		t.Errorf("exec output %q", stdout.String())
	}

	read := func(path string) string {
		rc, err := c.ReadFile(ctx, path)
		if err != nil {
			t.Fatalf("reading %s in the guest: %v", path, err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b)
	}
	host, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	if got := strings.TrimSpace(read("/proc/sys/kernel/osrelease")); got != g.KernelRelease || got == strings.TrimSpace(string(host)) {
		t.Errorf("guest kernel %q: want %q, not the host's %q", got, g.KernelRelease, host)
	}
	if got := strings.TrimSpace(read("/proc/sys/kernel/hostname")); got != "first-light" {
		t.Errorf("guest hostname %q", got)
	}
	if n := strings.Count(read("/proc/cpuinfo"), "processor\t:"); n != 2 {
		t.Errorf("guest has %d CPUs, want 2", n)
	}
	var memKiB int
	for _, line := range strings.Split(read("/proc/meminfo"), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			memKiB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	if memKiB > 256<<10 || memKiB < 200<<10 {
		t.Errorf("guest MemTotal %d KiB, want a little under 256 MiB", memKiB)
	}

	// The base initramfs is the root: busybox's userland answers.
	run := func(args ...string) string {
		var stdout, stderr bytes.Buffer
		st, err := c.Exec(ctx, agentv1.ExecSpec{Args: args}, nil, &stdout, &stderr)
		if err != nil || st.Code != 0 {
			t.Fatalf("%q in the guest: %v, %+v, stderr %q", args, err, st, stderr.String())
		}
		return stdout.String()
	}
	if got := run("/bin/sh", "-c", "echo $((6*7))"); got != "42\n" {
		t.Errorf("sh arithmetic printed %q", got)
	}
	if got := run("cat", "/etc/os-release"); !strings.Contains(got, "ID=agentkernel\n") {
		t.Errorf("os-release:\n%s", got)
	}

	// c holds one port for as long as it lives; others get theirs, and a
	// port comes back when its client lets go.
	var others []*agentv1.Client
	for range 3 {
		o := agentv1.NewClient(func(ctx context.Context) (net.Conn, error) { return qemu.DialAgent(ctx, vmDir) })
		others = append(others, o)
		if st, err := o.Exec(ctx, agentv1.ExecSpec{Args: []string{"/init", "-version"}}, nil, io.Discard, io.Discard); err != nil || st.Code != 0 {
			t.Fatalf("exec from a client of its own: %v %+v", err, st)
		}
	}
	others[0].Close()
	again := agentv1.NewClient(func(ctx context.Context) (net.Conn, error) { return qemu.DialAgent(ctx, vmDir) })
	if st, err := again.Exec(ctx, agentv1.ExecSpec{Args: []string{"/init", "-version"}}, nil, io.Discard, io.Discard); err != nil || st.Code != 0 {
		t.Fatalf("exec over a port given back: %v %+v", err, st)
	}
	again.Close()
	for _, o := range others[1:] {
		o.Close()
	}

	if err := vm.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	if qemu.Alive(vmDir) {
		t.Error("VM alive after Quit")
	}
}

// requireQEMU skips a VM test where it cannot run (CI, as root with QEMU
// installed, runs it).
func requireQEMU(t testing.TB) {
	testutil.RequireRoot(t)
	_, err := exec.LookPath("qemu-system-x86_64")
	testutil.Require(t, err == nil, "needs qemu-system-x86_64 (apt-get install qemu-system-x86)")
}

// vmTest starts a test that boots VMs: it must leave nothing behind, and
// gets three minutes.
func vmTest(t *testing.T) context.Context {
	requireQEMU(t)
	before := testutil.Snapshot()
	t.Cleanup(func() { testutil.CheckNoLeaks(t, before) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// bootInitrd writes to out what a microVM boots, as the backend makes it at
// each start: the base initramfs, then an uncompressed newc archive holding
// only the agent as /init. The kernel unpacks concatenated archives in
// order, but one that follows a compressed archive must start at a 4-byte
// offset, so the base is padded with zeros, which the unpacker skips.
func bootInitrd(t testing.TB, base, agent, out string) string {
	t.Helper()
	data, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.NewBuffer(data)
	buf.Write(make([]byte, (4-len(data)%4)%4))
	if err := writeCPIO(buf, []File{{Path: "/init", Mode: 0o755, Source: agent}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
