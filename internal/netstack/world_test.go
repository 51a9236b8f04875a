//go:build linux

package netstack

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
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
	"github.com/agentkernel-go/agentkernel/internal/nettap"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// The test world: upstream servers in a network namespace of their own,
// reached from the host over a veth pair, and a sandbox network
// namespace whose TAP interface a Stack serves. The upstream addresses
// are from 192.88.99.0/24 (the retired 6to4 relay range): public as far
// as the policy is concerned, and routed only to the veth while the test
// runs.
var (
	upHost    = netip.MustParseAddr("192.88.99.1") // the host's end: a host address
	upAllowed = netip.MustParseAddr("192.88.99.2") // allowed.test, other.test
	upDenied  = netip.MustParseAddr("192.88.99.3") // denied.test
)

type world struct {
	guest  netns.NsHandle
	stack  *Stack
	ca     *x509.CertPool
	mu     sync.Mutex
	events []Event
}

// inNS runs fn on an OS thread in ns. The thread is never given back to
// the scheduler (it ends with the goroutine), so no other goroutine ever
// runs in ns by accident. Sockets made in fn stay in ns.
func inNS(t testing.TB, ns netns.NsHandle, fn func()) {
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

func newNS(t testing.TB) netns.NsHandle {
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

func newWorld(t *testing.T, rules netpolicy.Rules) *world {
	testutil.RequireLinux(t)
	testutil.RequireRoot(t)
	before := testutil.Snapshot()
	t.Cleanup(func() { testutil.CheckNoLeaks(t, before) })
	w := &world{}
	upNS := newNS(t)
	hostName, upName := fmt.Sprintf("akt%dh", os.Getpid()%100000), fmt.Sprintf("akt%du", os.Getpid()%100000)
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
	if err := netlink.LinkSetNsFd(peer, int(upNS)); err != nil {
		t.Fatal(err)
	}
	mustAddr(t, nil, hostLink, upHost, 24)
	if err := netlink.LinkSetUp(hostLink); err != nil {
		t.Fatal(err)
	}
	uh, err := netlink.NewHandleAt(upNS)
	if err != nil {
		t.Fatal(err)
	}
	defer uh.Close()
	upLink, err := uh.LinkByName(upName)
	if err != nil {
		t.Fatal(err)
	}
	mustAddr(t, uh, upLink, upAllowed, 24)
	mustAddr(t, uh, upLink, upDenied, 24)
	if err := uh.LinkSetUp(upLink); err != nil {
		t.Fatal(err)
	}
	w.ca = w.startUpstream(t, upNS)

	w.guest = newNS(t)
	var tap *os.File
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
			"loop.test": {netip.MustParseAddr("127.0.0.1")},
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

func mustAddr(t *testing.T, h *netlink.Handle, l netlink.Link, a netip.Addr, bits int) {
	t.Helper()
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}}
	add := netlink.AddrAdd
	if h != nil {
		add = h.AddrAdd
	}
	if err := add(l, addr); err != nil {
		t.Fatalf("address %s: %v", a, err)
	}
}

// startUpstream starts, inside ns, HTTP on :80 and HTTPS on :443 of both
// upstream addresses (answering with their Host), and a UDP echo on
// :7 of the allowed one. It returns the pool trusting the HTTPS
// certificate.
func (w *world) startUpstream(t *testing.T, ns netns.NsHandle) *x509.CertPool {
	cert, pool := testCert(t, "allowed.test", "other.test", "denied.test")
	handler := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "hello %s", r.Host)
	})
	var lns []net.Listener
	var udp net.PacketConn
	var err error
	inNS(t, ns, func() {
		lo, _ := netlink.LinkByName("lo")
		netlink.LinkSetUp(lo)
		for _, a := range []netip.Addr{upAllowed, upDenied} {
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
		udp, err = net.ListenPacket("udp", netip.AddrPortFrom(upAllowed, 7).String())
	})
	if err != nil {
		t.Fatalf("upstream: %v", err)
	}
	for _, ln := range lns {
		// Connections the policy cuts after the upstream dial end in
		// handshake errors here: expected, and not worth a log line.
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
	return pool
}

func testCert(t *testing.T, names ...string) (tls.Certificate, *x509.CertPool) {
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

// refusals returns the audit events so far.
func (w *world) refusals() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Event(nil), w.events...)
}
