//go:build linux

package cli

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// TestE2EMicroVM: `agentkernel setup` prepares the guest, then `run -B
// microvm` boots a VM with its own kernel and network, and leaves
// nothing; without setup the backend says how to get one.
func TestE2EMicroVM(t *testing.T) {
	_, err := exec.LookPath("qemu-system-x86_64")
	testutil.Require(t, err == nil, "qemu-system-x86_64 is not installed")
	e := newE2E(t)
	e.fails(5, "run `agentkernel setup`", "run", "-B", "microvm", "--", "true")

	if out := e.ok("setup"); !strings.Contains(out, "microVM guest ready: kernel ") {
		t.Fatalf("setup: %q", out)
	}
	if out := e.ok("doctor"); !strings.Contains(out, "microvm") || strings.Contains(out, "no microVM guest") {
		t.Errorf("doctor after setup:\n%s", out)
	}
	host, _ := exec.Command("uname", "-r").Output()
	out := e.ok("run", "-B", "microvm", "--", "sh", "-c", "uname -r; cat /etc/os-release; ls /sys/class/net")
	if strings.Contains(out, strings.TrimSpace(string(host))) || !strings.Contains(out, "ID=agentkernel") || !strings.Contains(out, "eth0") {
		t.Errorf("run -B microvm printed:\n%s", out)
	}
	if out := e.ok("run", "-B", "microvm", "--no-network", "--", "ls", "/sys/class/net"); strings.TrimSpace(out) != "lo" {
		t.Errorf("interfaces with --no-network: %q", out)
	}
}
