//go:build linux

package guest

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
	"github.com/agentkernel-go/agentkernel/internal/vmm/qemu"
)

// A booted guest saved to a state file and restored twice gives two VMs
// that, once told their identities, draw different random bytes, keep
// the right time and carry their own names; both serve the agent.
func TestSnapshotRestoresGetTheirOwnIdentity(t *testing.T) {
	ctx := vmTest(t)

	g := preparedGuest(t)
	dir := t.TempDir()
	accel, _ := qemu.ChooseAccel()
	// Made once: QEMU maps the initrd, and rewriting it under a running
	// VM would kill that VM.
	initrd := bootInitrd(t, g.Initrd, testutil.BuildBinary(t, "agentkernel-agent"), filepath.Join(dir, "boot.img"))
	config := func(name string) qemu.Config {
		return qemu.Config{
			Dir: filepath.Join(dir, name), Kernel: filepath.Join(filepath.Dir(g.Kernel), VmlinuxFile),
			Initrd:  initrd,
			Cmdline: "agentkernel.hostname=template",
			VCPUs:   1, MemoryMiB: 256, Accel: accel, AgentPort: "agentkernel",
		}
	}
	run := func(vmDir string, args ...string) string {
		t.Helper()
		c := agentv1.NewClient(func(ctx context.Context) (net.Conn, error) { return qemu.DialAgent(ctx, vmDir) })
		defer c.Close()
		var out, errb bytes.Buffer
		if st, err := c.Exec(ctx, agentv1.ExecSpec{Args: args}, nil, &out, &errb); err != nil || st.Code != 0 {
			qlog, _ := os.ReadFile(filepath.Join(vmDir, "qemu.log"))
			t.Fatalf("%v in %s: %v %+v %s; QEMU log: %s", args, vmDir, err, st, errb.String(), qlog)
		}
		return strings.TrimSpace(out.String())
	}
	start := func(cfg qemu.Config) *qemu.VM {
		t.Helper()
		vm, err := qemu.Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			vm.Kill()
			vm.Close()
			qemu.Remove(cfg.Dir)
		})
		return vm
	}

	tmpl := start(config("template"))
	run(config("template").Dir, "true")
	state := filepath.Join(dir, "state")
	if err := tmpl.Save(ctx, state); err != nil {
		t.Fatal(err)
	}
	if err := tmpl.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(state); err != nil || st.Size() == 0 {
		t.Fatalf("state file: %v", err)
	}

	random := map[string]string{}
	for _, name := range []string{"a", "b"} {
		cfg := config(name)
		cfg.Incoming = state
		t0 := time.Now()
		start(cfg)
		seed := make([]byte, 32)
		rand.Read(seed)
		if err := qemu.SetIdentity(ctx, cfg.Dir, agentv1.Identity{Seed: seed, Time: time.Now(), Hostname: "vm-" + name}); err != nil {
			t.Fatal(err)
		}
		t.Logf("restored %s and gave it its identity in %v", name, time.Since(t0))
		if got := run(cfg.Dir, "hostname"); got != "vm-"+name {
			t.Errorf("hostname of %s = %q", name, got)
		}
		secs, err := strconv.ParseInt(run(cfg.Dir, "date", "+%s"), 10, 64)
		if err != nil || time.Since(time.Unix(secs, 0)).Abs() > 5*time.Second {
			t.Errorf("clock of %s: %d (%v), host %d", name, secs, err, time.Now().Unix())
		}
		random[name] = run(cfg.Dir, "sh", "-c", "head -c 32 /dev/urandom | od -An -tx1")
	}
	if random["a"] == "" || random["a"] == random["b"] {
		t.Errorf("the two restored VMs read the same random bytes: %q", random["a"])
	}
}
