package netif

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Configure gives the interface name its MTU (unless 0), addresses and default
// routes through gateways, and brings it up, in the calling thread's
// network namespace: what the sandbox side of the network path needs,
// written with rtnetlink directly so the agent need not link a netlink
// library.
func Configure(name string, mtu int, addrs []netip.Prefix, gateways []netip.Addr) error {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if mtu > 0 {
		ifr.SetUint32(uint32(mtu))
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr); err != nil {
			return fmt.Errorf("%s: MTU %d: %w", name, mtu, err)
		}
	}
	for _, p := range addrs {
		if err := addAddr(ifi.Index, p); err != nil {
			return fmt.Errorf("%s: address %s: %w", name, p, err)
		}
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: up: %w", name, err)
	}
	for _, gw := range gateways {
		if err := addDefaultRoute(ifi.Index, gw); err != nil {
			return fmt.Errorf("%s: default route via %s: %w", name, gw, err)
		}
	}
	return nil
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func addAddr(index int, p netip.Prefix) error {
	msg := unix.IfAddrmsg{Family: family(p.Addr()), Prefixlen: uint8(p.Bits()), Index: uint32(index)}
	if p.Addr().Is6() {
		// The other end answers neighbour solicitations at once; duplicate
		// address detection would only delay the first packets.
		msg.Flags = unix.IFA_F_NODAD
	}
	ip := p.Addr().AsSlice()
	return rtnetlink(unix.RTM_NEWADDR, unsafe.Slice((*byte)(unsafe.Pointer(&msg)), unix.SizeofIfAddrmsg),
		attr(unix.IFA_LOCAL, ip), attr(unix.IFA_ADDRESS, ip))
}

func addDefaultRoute(index int, gw netip.Addr) error {
	msg := unix.RtMsg{
		Family: family(gw), Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_BOOT,
		Scope: unix.RT_SCOPE_UNIVERSE, Type: unix.RTN_UNICAST,
	}
	oif := binary.NativeEndian.AppendUint32(nil, uint32(index))
	return rtnetlink(unix.RTM_NEWROUTE, unsafe.Slice((*byte)(unsafe.Pointer(&msg)), unix.SizeofRtMsg),
		attr(unix.RTA_GATEWAY, gw.AsSlice()), attr(unix.RTA_OIF, oif))
}

// attr is one rtnetlink attribute, padded.
func attr(typ uint16, data []byte) []byte {
	n := unix.SizeofRtAttr + len(data)
	b := make([]byte, (n+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1))
	binary.NativeEndian.PutUint16(b, uint16(n))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[unix.SizeofRtAttr:], data)
	return b
}

// rtnetlink sends one create request and waits for its acknowledgement.
func rtnetlink(typ uint16, body []byte, attrs ...[]byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	req := make([]byte, unix.SizeofNlMsghdr, 256)
	req = append(req, body...)
	for _, a := range attrs {
		req = append(req, a...)
	}
	hdr := unix.NlMsghdr{
		Len: uint32(len(req)), Type: typ, Seq: 1,
		Flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK | unix.NLM_F_CREATE | unix.NLM_F_EXCL,
	}
	copy(req, unsafe.Slice((*byte)(unsafe.Pointer(&hdr)), unix.SizeofNlMsghdr))
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4 {
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				return unix.Errno(-code)
			}
			return nil
		}
	}
	return fmt.Errorf("rtnetlink: no acknowledgement")
}
