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
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

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

// A microVM's NIC reaches the stack as a socket of bare frames: the stack
// answers on it (ARP for its gateway here), refuses a stream socket, and
// ends when the other end (QEMU) goes away.
func TestStackServesASocketOfFrames(t *testing.T) {
	pol, _ := netpolicy.Compile(netpolicy.Rules{})
	stream, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(stream[1])
	if _, err := New(os.NewFile(uintptr(stream[0]), "stream"), Config{Policy: pol}); err == nil {
		t.Fatal("New on a stream socket succeeded")
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	guest := os.NewFile(uintptr(fds[1]), "guest")
	s, err := New(os.NewFile(uintptr(fds[0]), "nic"), Config{Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	guestMAC := tcpip.LinkAddress("\x52\x54\x00\x12\x34\x56")
	frame := make([]byte, header.EthernetMinimumSize+header.ARPSize)
	header.Ethernet(frame).Encode(&header.EthernetFields{SrcAddr: guestMAC, DstAddr: header.EthernetBroadcastAddress, Type: header.ARPProtocolNumber})
	arp := header.ARP(frame[header.EthernetMinimumSize:])
	arp.SetIPv4OverEthernet()
	arp.SetOp(header.ARPRequest)
	copy(arp.HardwareAddressSender(), guestMAC)
	copy(arp.ProtocolAddressSender(), nettap.Guest4.Addr().AsSlice())
	copy(arp.ProtocolAddressTarget(), nettap.Gateway4.AsSlice())
	if _, err := guest.Write(frame); err != nil {
		t.Fatal(err)
	}
	guest.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1<<16)
	for {
		n, err := guest.Read(buf)
		if err != nil {
			t.Fatalf("no ARP reply from the stack: %v", err)
		}
		eth := header.Ethernet(buf[:n])
		if eth.Type() != header.ARPProtocolNumber {
			continue // the stack's own IPv6 chatter
		}
		reply := header.ARP(buf[header.EthernetMinimumSize:n])
		if reply.Op() != header.ARPReply || tcpip.AddrFromSlice(reply.ProtocolAddressSender()) != tcpip.AddrFromSlice(nettap.Gateway4.AsSlice()) {
			t.Fatalf("unexpected ARP: op %d from %v", reply.Op(), reply.ProtocolAddressSender())
		}
		break
	}
	guest.Close()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("stack still serving after the other end closed")
	}
}
