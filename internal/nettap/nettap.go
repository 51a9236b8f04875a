//go:build linux

// Package nettap is the sandbox side of the network path: it creates the
// sandbox's network interface, a TAP device, in the sandbox's network
// namespace, gives it the sandbox network's addresses and routes, and
// hands back the device's file, which the host side (package netstack)
// serves. Every sandbox gets the same addresses: they are private to its
// namespace, and the host side translates.
//
// Runs in the sandbox's init, before capabilities are dropped (creating
// the device needs CAP_NET_ADMIN over the namespace). Imports no host
// package and nothing heavier than netlink.
package nettap

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
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
// namespace, configures it (addresses, MTU, default routes through the
// gateway, up) and returns its file. Nothing is left behind on failure.
func Create() (*os.File, error) {
	tap := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: Name, MTU: MTU},
		Mode:      netlink.TUNTAP_MODE_TAP,
		Flags:     netlink.TUNTAP_NO_PI | netlink.TUNTAP_ONE_QUEUE,
		Queues:    1,
	}
	if err := netlink.LinkAdd(tap); err != nil {
		return nil, fmt.Errorf("creating %s: %w", Name, err)
	}
	if len(tap.Fds) != 1 {
		netlink.LinkDel(tap)
		return nil, fmt.Errorf("creating %s: got %d queues", Name, len(tap.Fds))
	}
	f := tap.Fds[0]
	if err := configure(tap); err != nil {
		f.Close()
		netlink.LinkDel(tap)
		return nil, fmt.Errorf("configuring %s: %w", Name, err)
	}
	return f, nil
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
