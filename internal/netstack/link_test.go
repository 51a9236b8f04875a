//go:build linux

package netstack

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
	"github.com/agentkernel-go/agentkernel/internal/nettap"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// A TAP device without the virtio-net header would have every frame read
// 10 bytes off: the stack refuses it, and closes it as New promises.
func TestStackRefusesTAPWithoutVirtioNetHeader(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NewNetNS(t)
	var tap *os.File
	var err error
	inNS(t, ns, func() {
		if tap, err = os.OpenFile("/dev/net/tun", os.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
			return
		}
		var ifr *unix.Ifreq
		if ifr, err = unix.NewIfreq("plain0"); err == nil {
			ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
			err = unix.IoctlIfreq(int(tap.Fd()), unix.TUNSETIFF, ifr)
		}
	})
	if err != nil {
		t.Fatalf("plain TAP: %v", err)
	}
	pol, _ := netpolicy.Compile(netpolicy.Rules{})
	if _, err := New(tap, Config{Policy: pol}); err == nil || !strings.Contains(err.Error(), "virtio-net header") {
		t.Fatalf("New on a TAP without virtio-net header: %v, want a refusal", err)
	}
	if err := tap.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("the refused TAP was left open (Close: %v)", err)
	}
}

// The sandbox's interface going away ends the stack (Done), which is how
// the daemon learns of it without being told.
func TestStackEndsWithItsDevice(t *testing.T) {
	testutil.RequireRoot(t)
	w := newWorld(t, netpolicy.Rules{})
	select {
	case <-w.stack.Done():
		t.Fatal("stack done before its device went away")
	default:
	}
	var err error
	inNS(t, w.guest, func() {
		var l netlink.Link
		if l, err = netlink.LinkByName(nettap.Name); err == nil {
			err = netlink.LinkDel(l)
		}
	})
	if err != nil {
		t.Fatalf("deleting the sandbox's interface: %v", err)
	}
	select {
	case <-w.stack.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("stack still serving a deleted interface")
	}
}
