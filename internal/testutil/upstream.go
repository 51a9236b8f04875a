//go:build linux

package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Upstream is a network of test servers for sandboxes to reach: a network
// namespace of its own, reached from the host over a veth pair. Its
// addresses are from 192.88.99.0/24 (the retired 6to4 relay range):
// public as far as egress policies are concerned, and routed only to the
// veth while the test runs.
type Upstream struct {
	// Host is the host's end of the veth: an address of the host.
	Host netip.Addr
	// A and B are the servers' two addresses. Each serves HTTP on :80 and
	// HTTPS on :443 (answering "hello <Host header>"); A also a UDP echo on
	// :7 ("echo <datagram>") and, on TCP :19, zeros until the client
	// closes (a bulk source for throughput).
	A, B netip.Addr
	// Host6 and A6 are the IPv6 counterparts of Host and A (in 64:ff9b::/96,
	// the NAT64 prefix: public as far as policies are concerned). A6
	// serves HTTP on :80 too.
	Host6, A6 netip.Addr
	// CA trusts the HTTPS servers' certificate, which names Names.
	CA    *x509.CertPool
	Names []string
}

// NewUpstream starts the servers; the test's cleanup removes everything.
func NewUpstream(t testing.TB, names ...string) *Upstream {
	t.Helper()
	RequireLinux(t)
	RequireRoot(t)
	u := &Upstream{
		Host: netip.MustParseAddr("192.88.99.1"), A: netip.MustParseAddr("192.88.99.2"),
		B: netip.MustParseAddr("192.88.99.3"), Names: names,
		Host6: netip.MustParseAddr("64:ff9b::c058:6301"), A6: netip.MustParseAddr("64:ff9b::c058:6302"),
	}
	ns := NewNetNS(t)
	id := os.Getpid() % 100000
	hostName, upName := fmt.Sprintf("akt%dh", id), fmt.Sprintf("akt%du", id)
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostName}, PeerName: upName}); err != nil {
		t.Fatalf("veth: %v", err)
	}
	hostLink, err := netlink.LinkByName(hostName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(hostLink) })
	peer, err := netlink.LinkByName(upName)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetNsFd(peer, int(ns)); err != nil {
		t.Fatal(err)
	}
	addAddr(t, nil, hostLink, u.Host)
	addAddr(t, nil, hostLink, u.Host6)
	if err := netlink.LinkSetUp(hostLink); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	upLink, err := h.LinkByName(upName)
	if err != nil {
		t.Fatal(err)
	}
	addAddr(t, h, upLink, u.A)
	addAddr(t, h, upLink, u.B)
	addAddr(t, h, upLink, u.A6)
	if err := h.LinkSetUp(upLink); err != nil {
		t.Fatal(err)
	}
	u.serve(t, ns)
	return u
}

func addAddr(t testing.TB, h *netlink.Handle, l netlink.Link, a netip.Addr) {
	t.Helper()
	bits := 24
	if a.Is6() {
		bits = 96
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}}
	if a.Is6() {
		addr.Flags = unix.IFA_F_NODAD // usable at once
	}
	add := netlink.AddrAdd
	if h != nil {
		add = h.AddrAdd
	}
	if err := add(l, addr); err != nil {
		t.Fatalf("address %s: %v", a, err)
	}
}

func (u *Upstream) serve(t testing.TB, ns netns.NsHandle) {
	cert, pool := testCert(t, u.Names...)
	u.CA = pool
	handler := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "hello %s", r.Host)
	})
	var lns []net.Listener
	var udp net.PacketConn
	var err error
	InNetNS(t, ns, func() {
		lo, _ := netlink.LinkByName("lo")
		netlink.LinkSetUp(lo)
		for _, a := range []netip.Addr{u.A, u.B, u.A6} {
			for _, port := range []uint16{80, 443} {
				var ln net.Listener
				if ln, err = net.Listen("tcp", netip.AddrPortFrom(a, port).String()); err != nil {
					return
				}
				if port == 443 {
					ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
				}
				lns = append(lns, ln)
			}
		}
		if udp, err = net.ListenPacket("udp", netip.AddrPortFrom(u.A, 7).String()); err != nil {
			return
		}
		var bulk net.Listener
		if bulk, err = net.Listen("tcp", netip.AddrPortFrom(u.A, 19).String()); err == nil {
			t.Cleanup(func() { bulk.Close() })
			go serveZeros(bulk)
		}
	})
	if err != nil {
		t.Fatalf("upstream: %v", err)
	}
	for _, ln := range lns {
		// Connections an egress policy cuts after its upstream dial end
		// in handshake errors here: expected, and not worth a log line.
		srv := &http.Server{Handler: handler, ErrorLog: log.New(io.Discard, "", 0)}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			udp.WriteTo(append([]byte("echo "), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() { udp.Close() })
}

func serveZeros(ln net.Listener) {
	zeros := make([]byte, 1<<20)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			for {
				if _, err := c.Write(zeros); err != nil {
					return
				}
			}
		}()
	}
}

// InNetNS runs fn on an OS thread in ns. The thread is never given back
// to the scheduler (it ends with the goroutine), so no other goroutine
// ever runs in ns by accident. Sockets made in fn stay in ns.
func InNetNS(t testing.TB, ns netns.NsHandle, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			t.Errorf("entering netns: %v", err)
			return
		}
		fn()
	}()
	<-done
}

// NewNetNS makes an unnamed network namespace, gone when the test ends.
func NewNetNS(t testing.TB) netns.NsHandle {
	t.Helper()
	var h netns.NsHandle
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // the thread dies in the new namespace
		h, err = netns.New()
	}()
	<-done
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func testCert(t testing.TB, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agentkernel test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: names, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
