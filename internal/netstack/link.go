package netstack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/agentkernel-go/agentkernel/internal/nettap"
)

// tapLink is the stack's link to the sandbox's network device: a TAP
// device made by nettap (Ethernet frames, each behind a virtio-net
// header), or a datagram socket carrying one bare Ethernet frame per
// datagram (a microVM's NIC, whose other end QEMU holds).
//
// It exists instead of gVisor's fdbased endpoint for two reasons. Latency:
// fdbased reads on a thread of its own, blocked in ppoll, and hands every
// packet to another goroutine; each new connection paid several wake-ups
// of sleeping threads, which on a virtual machine cost tens of
// microseconds each. Reading through Go's poller delivers a packet on
// the thread that polled, and the stack's goroutines it wakes mostly run
// there too. Throughput: fdbased offloads checksums only on sockets;
// here the virtio-net header carries them to the sandbox's kernel, which
// does not compute them for a packet that never leaves the machine.
type tapLink struct {
	f    *os.File
	raw  syscall.RawConn
	addr tcpip.LinkAddress
	gone func() // the device went away (the sandbox's namespace with it)
	// hdrLen is the virtio-net header's length before each frame: zero on
	// a socket, which carries no offloads.
	hdrLen int

	mu         sync.Mutex
	dispatcher stack.NetworkDispatcher
	onClose    func()
	reading    sync.WaitGroup
	closeOnce  sync.Once
}

// vnetHdrLen is the size of struct virtio_net_hdr, the TAP's default.
const vnetHdrLen = 10

// The fields of struct virtio_net_hdr this link uses (linux/virtio_net.h).
const (
	vnetNeedsCsum = 1 // flags: VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetGSOTCPv4  = 1 // gso_type: VIRTIO_NET_HDR_GSO_TCPV4
	vnetGSOTCPv6  = 4 // gso_type: VIRTIO_NET_HDR_GSO_TCPV6
)

// gsoMaxSize is the largest segment handed to the TAP: an IP packet's
// limit. The sandbox's kernel takes a larger-than-MTU segment as one.
const gsoMaxSize = 1<<16 - 1

// newTAPLink serves tap: a TAP device made with a virtio-net header, or a
// datagram socket of frames. gone is called once if the device goes away.
func newTAPLink(tap *os.File, addr tcpip.LinkAddress, gone func()) (*tapLink, error) {
	// A copy of the descriptor, made non-blocking, becomes a file whose
	// reads and writes go through the poller.
	defer tap.Close()
	raw, err := tap.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd, hdrLen := -1, 0
	var serr error
	cerr := raw.Control(func(tfd uintptr) { fd, hdrLen, serr = dupDevice(int(tfd)) })
	if err := errors.Join(cerr, serr); err != nil {
		return nil, fmt.Errorf("network device: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("network device: %w", err)
	}
	f := os.NewFile(uintptr(fd), "tap")
	if raw, err = f.SyscallConn(); err != nil {
		f.Close()
		return nil, err
	}
	return &tapLink{f: f, raw: raw, addr: addr, gone: gone, hdrLen: hdrLen}, nil
}

// dupDevice checks fd is a device the link can serve and returns a copy
// of it and the length of the header before each frame.
func dupDevice(fd int) (int, int, error) {
	hdrLen := vnetHdrLen
	if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err == nil {
		if typ != unix.SOCK_DGRAM && typ != unix.SOCK_SEQPACKET {
			return -1, 0, fmt.Errorf("a socket of frames must be a datagram socket")
		}
		hdrLen = 0
	} else {
		ifr, err := unix.NewIfreq("")
		if err == nil {
			err = unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr)
		}
		if err != nil {
			return -1, 0, err
		}
		if ifr.Uint16()&unix.IFF_VNET_HDR == 0 {
			return -1, 0, fmt.Errorf("TAP device without a virtio-net header")
		}
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	return dup, hdrLen, err
}

// MTU implements stack.LinkEndpoint.
func (l *tapLink) MTU() uint32 { return nettap.MTU }

// SetMTU implements stack.LinkEndpoint: the MTU is fixed, on both sides.
func (l *tapLink) SetMTU(uint32) {}

// MaxHeaderLength implements stack.LinkEndpoint.
func (l *tapLink) MaxHeaderLength() uint16 { return header.EthernetMinimumSize }

// LinkAddress implements stack.LinkEndpoint.
func (l *tapLink) LinkAddress() tcpip.LinkAddress { return l.addr }

// SetLinkAddress implements stack.LinkEndpoint: the address is fixed.
func (l *tapLink) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.LinkEndpoint. A TAP device is memory:
// what arrives was checked by the sandbox's kernel or needs no check.
func (l *tapLink) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityRXChecksumOffload | stack.CapabilityResolutionRequired
}

// SupportedGSO implements stack.GSOEndpoint: through a TAP, TCP segments
// leave with their checksum to be completed, and may be larger than the
// MTU; a socket carries finished frames only.
func (l *tapLink) SupportedGSO() stack.SupportedGSO {
	if l.hdrLen == 0 {
		return stack.GSONotSupported
	}
	return stack.HostGSOSupported
}

// GSOMaxSize implements stack.GSOEndpoint.
func (l *tapLink) GSOMaxSize() uint32 { return gsoMaxSize }

// ARPHardwareType implements stack.LinkEndpoint.
func (l *tapLink) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }

// Attach implements stack.LinkEndpoint: reading starts with a dispatcher
// and ends without one (the NIC is being removed).
func (l *tapLink) Attach(d stack.NetworkDispatcher) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d == nil {
		l.closeFile()
		return
	}
	if l.dispatcher == nil {
		l.dispatcher = d
		l.reading.Add(1)
		go l.read(d)
	}
}

// IsAttached implements stack.LinkEndpoint.
func (l *tapLink) IsAttached() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dispatcher != nil
}

// Wait implements stack.LinkEndpoint. It does not wait for the reader:
// gVisor calls it with the stack's lock held, which a packet being
// delivered may be waiting for. Stack.Close waits with drain instead.
func (l *tapLink) Wait() {}

// drain waits for the reader to end, after Attach(nil) or Close.
func (l *tapLink) drain() { l.reading.Wait() }

// Close implements stack.LinkEndpoint.
func (l *tapLink) Close() {
	l.closeFile()
	l.mu.Lock()
	onClose := l.onClose
	l.mu.Unlock()
	if onClose != nil {
		onClose()
	}
}

// SetOnCloseAction implements stack.LinkEndpoint.
func (l *tapLink) SetOnCloseAction(f func()) {
	l.mu.Lock()
	l.onClose = f
	l.mu.Unlock()
}

func (l *tapLink) closeFile() { l.closeOnce.Do(func() { l.f.Close() }) }

// AddHeader implements stack.LinkEndpoint.
func (l *tapLink) AddHeader(pkt *stack.PacketBuffer) {
	eth := header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize))
	eth.Encode(&header.EthernetFields{
		SrcAddr: pkt.EgressRoute.LocalLinkAddress,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	})
}

// ParseHeader implements stack.LinkEndpoint.
func (l *tapLink) ParseHeader(pkt *stack.PacketBuffer) bool {
	h, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	if ok {
		pkt.NetworkProtocolNumber = header.Ethernet(h).Type()
	}
	return ok
}

// read delivers the sandbox's frames until the device or the file is
// closed.
func (l *tapLink) read(d stack.NetworkDispatcher) {
	defer l.reading.Done()
	buf := make([]byte, l.hdrLen+header.EthernetMinimumSize+1<<16)
	for {
		n, err := l.f.Read(buf)
		if err != nil {
			// os.ErrClosed: Close or Attach(nil). Anything else: the
			// device is gone (EBADFD once its namespace is).
			if l.gone != nil {
				l.gone()
			}
			return
		}
		if n < l.hdrLen+header.EthernetMinimumSize {
			continue
		}
		// The header's checksum flags need nothing: the stack checks no
		// checksum from this link, and no segmentation was offered.
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(buf[l.hdrLen:n])})
		if l.ParseHeader(pkt) && l.forUs(header.Ethernet(pkt.LinkHeader().Slice())) {
			d.DeliverNetworkPacket(pkt.NetworkProtocolNumber, pkt)
		}
		pkt.DecRef()
	}
}

// forUs tells a frame addressed to the stack, or to everyone.
func (l *tapLink) forUs(eth header.Ethernet) bool {
	dst := eth.DestinationAddress()
	return dst == l.addr || dst[0]&1 == 1
}

// WritePackets implements stack.LinkEndpoint.
func (l *tapLink) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	for i, pkt := range pkts.AsSlice() {
		if err := l.write(pkt); err != nil {
			return i, err
		}
	}
	return pkts.Len(), nil
}

func (l *tapLink) write(pkt *stack.PacketBuffer) tcpip.Error {
	var hdr [vnetHdrLen]byte
	if gso := pkt.GSOOptions; gso.Type != stack.GSONone {
		binary.LittleEndian.PutUint16(hdr[2:], uint16(pkt.HeaderSize()))
		if gso.NeedsCsum {
			hdr[0] = vnetNeedsCsum
			binary.LittleEndian.PutUint16(hdr[6:], header.EthernetMinimumSize+gso.L3HdrLen)
			binary.LittleEndian.PutUint16(hdr[8:], gso.CsumOffset)
		}
		if pkt.Data().Size() > int(gso.MSS) {
			switch gso.Type {
			case stack.GSOTCPv4:
				hdr[1] = vnetGSOTCPv4
			case stack.GSOTCPv6:
				hdr[1] = vnetGSOTCPv6
			}
			binary.LittleEndian.PutUint16(hdr[4:], gso.MSS)
		}
	}
	var iovs [8][]byte
	bufs := append(append(iovs[:0], hdr[:l.hdrLen]), pkt.AsSlices()...)
	var werr error
	err := l.raw.Write(func(fd uintptr) bool {
		_, werr = unix.Writev(int(fd), bufs)
		return werr != unix.EAGAIN
	})
	if err != nil {
		return &tcpip.ErrClosedForSend{}
	}
	if werr != nil {
		return tcpip.TranslateErrno(werr.(unix.Errno))
	}
	return nil
}
