//go:build linux

// Package nettap is the sandbox side of the network path: it creates the
// sandbox's network interface, a TAP device, in the sandbox's network
// namespace, gives it the sandbox network's addresses and routes, and
// hands back the device's file, which the host side (package netstack)
// serves. Every sandbox gets the same addresses: they are private to its
// namespace, and the host side translates.
//
// It runs in the sandbox's network namespace, with CAP_NET_ADMIN over it:
// in the host's process as root (CreateIn: /dev/net/tun is often root's
// alone), or in the sandbox's init before it drops its capabilities when
// agentkernel runs unprivileged (Create). Imports no host package and
// nothing heavier than netlink.
package nettap

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The sandbox network. The gateway and the resolver are addresses of the
// host side's stack.
var (
	Guest4   = netip.MustParsePrefix("10.0.2.15/24")
	Gateway4 = netip.MustParseAddr("10.0.2.2")
	DNS4     = netip.MustParseAddr("10.0.2.3")
	Guest6   = netip.MustParsePrefix("fd61:6b00::15/64")
	Gateway6 = netip.MustParseAddr("fd61:6b00::2")
	DNS6     = netip.MustParseAddr("fd61:6b00::3")
)

// MTU is the interface's MTU, on both sides. Large, as slirp4netns and
// pasta use: a userspace stack pays per packet, not per byte.
const MTU = 65520

// Name is the interface's name inside the sandbox.
const Name = "eth0"

// Create makes the TAP interface in the calling thread's network
// namespace and configures it: addresses, MTU, default routes through the
// gateway, up; loopback comes up too. It returns the TAP device's file.
// The thread must stay locked to its OS thread throughout: /dev/net/tun
// makes its devices in the namespace it was opened in.
func Create() (*os.File, error) {
	tun, err := os.OpenFile("/dev/net/tun", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq(Name)
	if err != nil {
		tun.Close()
		return nil, err
	}
	// Each frame carries a virtio-net header: it lets the host side hand
	// the sandbox's kernel TCP segments whose checksum is left to
	// complete, which a packet that never leaves the machine then skips.
	// The same offload the other way (TUN_F_CSUM): the sandbox's kernel
	// sends without computing checksums the host side does not check.
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(int(tun.Fd()), unix.TUNSETIFF, ifr); err != nil {
		tun.Close()
		return nil, fmt.Errorf("creating %s: %w", Name, err)
	}
	if err := unix.IoctlSetInt(int(tun.Fd()), unix.TUNSETOFFLOAD, unix.TUN_F_CSUM); err != nil {
		tun.Close()
		return nil, fmt.Errorf("checksum offload on %s: %w", Name, err)
	}
	// The device goes away with the last descriptor of it: on failure,
	// closing tun is all the cleaning up there is.
	link, err := netlink.LinkByName(Name)
	if err == nil {
		err = netlink.LinkSetMTU(link, MTU)
	}
	if err == nil {
		err = configure(link)
	}
	if err != nil {
		tun.Close()
		return nil, fmt.Errorf("configuring %s: %w", Name, err)
	}
	return tun, nil
}

// CreateIn is Create in the network namespace of process pid, for a
// caller with CAP_SYS_ADMIN over it (root, for its sandboxes).
func CreateIn(pid int) (*os.File, error) {
	target, err := netns.GetFromPid(pid)
	if err != nil {
		return nil, fmt.Errorf("network namespace of %d: %w", pid, err)
	}
	defer target.Close()
	type result struct {
		f   *os.File
		err error
	}
	rc := make(chan result, 1)
	go func() {
		// The thread is never unlocked: it ends with this goroutine,
		// so it never serves other goroutines from the sandbox's
		// namespace, whether or not switching back worked.
		runtime.LockOSThread()
		if err := netns.Set(target); err != nil {
			rc <- result{err: fmt.Errorf("entering the sandbox's network namespace: %w", err)}
			return
		}
		f, err := Create()
		rc <- result{f, err}
	}()
	r := <-rc
	return r.f, r.err
}

func configure(link netlink.Link) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return err
	}
	for _, p := range []netip.Prefix{Guest4, Guest6} {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			// The stack answers neighbour solicitations at once; duplicate
			// address detection would only delay the first packets.
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("address %s: %w", p, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return err
	}
	for _, gw := range []netip.Addr{Gateway4, Gateway6} {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice()}
		if err := netlink.RouteAdd(route); err != nil {
			return fmt.Errorf("default route via %s: %w", gw, err)
		}
	}
	return nil
}

// ResolvConf is /etc/resolv.conf for a sandbox on this network.
func ResolvConf() string {
	return fmt.Sprintf("nameserver %s\nnameserver %s\noptions edns0\n", DNS4, DNS6)
}
