//go:build linux

package netstack

import (
	"crypto/x509"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
	"github.com/agentkernel-go/agentkernel/internal/nettap"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// The test world: the upstream servers (testutil.Upstream), and a sandbox
// network namespace whose TAP interface a Stack serves.
var (
	upHost    netip.Addr // the host's end of the upstream veth
	upAllowed netip.Addr // allowed.test, other.test
	upDenied  netip.Addr // denied.test

	upHost6, upAllowed6 netip.Addr
)

type world struct {
	guest  netns.NsHandle
	stack  *Stack
	ca     *x509.CertPool
	mu     sync.Mutex
	events []Event
}

func inNS(t testing.TB, ns netns.NsHandle, fn func()) { testutil.InNetNS(t, ns, fn) }

func newWorld(t testing.TB, rules netpolicy.Rules) *world {
	before := testutil.Snapshot()
	t.Cleanup(func() { testutil.CheckNoLeaks(t, before) })
	up := testutil.NewUpstream(t, "allowed.test", "other.test", "denied.test")
	upHost, upAllowed, upDenied = up.Host, up.A, up.B
	upHost6, upAllowed6 = up.Host6, up.A6
	w := &world{ca: up.CA, guest: testutil.NewNetNS(t)}
	var tap *os.File
	var err error
	inNS(t, w.guest, func() { tap, err = nettap.Create() })
	if err != nil {
		t.Fatalf("tap: %v", err)
	}
	pol, err := netpolicy.Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	w.stack, err = New(tap, Config{
		Policy: pol,
		Hosts: map[string][]netip.Addr{
			"allowed.test": {upAllowed}, "other.test": {upAllowed}, "denied.test": {upDenied},
			"loop.test": {netip.MustParseAddr("127.0.0.1")}, "six.test": {upAllowed6},
		},
		Audit: func(e Event) {
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
		},
		DialTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.stack.Close() })
	return w
}

// refusals returns the audit events so far.
func (w *world) refusals() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Event(nil), w.events...)
}
