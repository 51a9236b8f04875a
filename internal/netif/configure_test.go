//go:build linux

package netif_test

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/netif"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// Configure, in a namespace of the test's own, on one end of a veth pair: the
// addresses, MTU and routes read back as the agent set them.
func TestConfigure(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NewNetNS(t)
	var err error
	var out []byte
	testutil.InNetNS(t, ns, func() {
		if out, err = exec.Command("ip", "link", "add", "eth9", "type", "veth", "peer", "name", "eth8").CombinedOutput(); err != nil {
			return
		}
		if err = netif.Configure("eth9", 9000,
			[]netip.Prefix{netip.MustParsePrefix("10.0.2.15/24"), netip.MustParsePrefix("fd61:6b00::15/64")},
			[]netip.Addr{netip.MustParseAddr("10.0.2.2"), netip.MustParseAddr("fd61:6b00::2")}); err != nil {
			return
		}
		var o4, o6, oa []byte
		o4, _ = exec.Command("ip", "-4", "route").CombinedOutput()
		o6, _ = exec.Command("ip", "-6", "route").CombinedOutput()
		oa, _ = exec.Command("ip", "addr", "show", "eth9").CombinedOutput()
		out = append(append(o4, o6...), oa...)
	})
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{
		"default via 10.0.2.2 dev eth9", "default via fd61:6b00::2 dev eth9",
		"mtu 9000", "inet 10.0.2.15/24", "inet6 fd61:6b00::15/64", "UP",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	// A second configuration of the same addresses fails: nothing is
	// silently taken over.
	testutil.InNetNS(t, ns, func() {
		err = netif.Configure("eth9", 9000, []netip.Prefix{netip.MustParsePrefix("10.0.2.15/24")}, nil)
	})
	if err == nil {
		t.Error("adding an address twice succeeded")
	}
}
