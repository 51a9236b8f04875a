package conformance

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// hostProbe runs the prober on the host: the control showing a check can
// succeed, so a denial inside the sandbox means something.
func (s *suite) hostProbe(t *testing.T, args ...string) bool {
	t.Helper()
	err := exec.Command(s.prober, args...).Run()
	return err == nil
}

func (s *suite) testIsolation(t *testing.T) {
	name := s.shared
	s.installProber(t, name)

	t.Run("HostSecretsHidden", func(t *testing.T) {
		home, _ := os.UserHomeDir()
		secret := fmt.Sprintf("ak-secret-%d", os.Getpid())
		var paths []string
		for _, dir := range []string{"/root", home, os.TempDir(), "/var/tmp"} {
			if dir == "" {
				continue
			}
			p := filepath.Join(dir, secret)
			if err := os.WriteFile(p, []byte("TOPSECRET\n"), 0o644); err != nil {
				t.Logf("cannot plant %s: %v", p, err)
				continue
			}
			defer os.Remove(p)
			paths = append(paths, p)
		}
		if len(paths) == 0 {
			t.Fatal("could not plant any secret")
		}
		for _, p := range paths {
			if !s.hostProbe(t, "read", p) {
				t.Fatalf("control: host cannot read %s", p)
			}
			if ok, out := s.probe(t, name, "read", p); ok || strings.Contains(out, "TOPSECRET") {
				t.Errorf("sandbox read host secret %s: %s", p, out)
			}
		}
	})

	t.Run("HostViewReadOnly", func(t *testing.T) {
		target := fmt.Sprintf("/usr/bin/ak-escape-%d", os.Getpid())
		if ok, out := s.probe(t, name, "write", target); ok {
			t.Errorf("sandbox wrote %s: %s", target, out)
		}
		if _, err := os.Stat(target); err == nil {
			os.Remove(target)
			t.Errorf("%s appeared on the host", target)
		}
	})

	t.Run("OwnProcessesOnly", func(t *testing.T) {
		_, out := s.probe(t, name, "pids")
		pids := strings.Split(strings.TrimPrefix(out, "ok "), ",")
		if len(pids) == 0 || len(pids) > 10 {
			t.Errorf("sandbox sees %d processes: %s", len(pids), out)
		}
		hostPID := strconv.Itoa(os.Getpid())
		for _, p := range pids {
			if p == hostPID && os.Getpid() > 20 {
				t.Errorf("sandbox sees the test process's pid %s", p)
			}
		}
	})

	t.Run("HostLoopbackUnreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go acceptAndClose(l)
		addr := l.Addr().String()
		if !s.hostProbe(t, "connect", addr) {
			t.Fatalf("control: host cannot reach %s", addr)
		}
		if ok, out := s.probe(t, name, "connect", addr); ok {
			t.Errorf("sandbox reached host loopback %s: %s", addr, out)
		}
	})

	t.Run("NetworkInterfaces", func(t *testing.T) {
		want := "ok lo" // loopback only
		if s.h.Network != nil {
			want = "ok lo,eth0" // and the network path's
		}
		if _, out := s.probe(t, name, "ifaces"); out != want {
			t.Errorf("interfaces = %q, want %q", out, want)
		}
	})

	t.Run("Hostname", func(t *testing.T) {
		if _, out := s.probe(t, name, "hostname"); out != "ok "+name {
			t.Errorf("hostname = %q, want %q", out, name)
		}
		if ok, _ := s.probe(t, name, "sethostname"); ok {
			t.Error("sandbox changed its hostname")
		}
	})

	t.Run("PrivilegedOperationsDenied", func(t *testing.T) {
		for _, args := range [][]string{
			{"mount", "/tmp"},
			{"unshare-user"},
			{"unshare-mount"},
			{"reboot"},
			{"finit_module"},
			{"mknod", "/tmp/ak-null"},
			{"chroot", "/tmp"},
			{"bpf"},
		} {
			if ok, out := s.probe(t, name, args...); ok {
				t.Errorf("%v succeeded inside the sandbox: %s", args, out)
			}
		}
		// The sandbox survived the reboot attempt.
		s.sh(t, name, "true")
	})

	t.Run("PtraceSiblingDenied", func(t *testing.T) {
		p, err := s.m.StartProcess(t.Context(), name, agentv1.ExecSpec{Args: []string{"sleep", "60"}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.m.KillProcess(t.Context(), name, p.ID, 9)
		// Control: on the host, root can trace its own child.
		host := exec.Command("sleep", "60")
		if err := host.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { host.Process.Kill(); host.Wait() }()
		if os.Geteuid() == 0 && !s.hostProbe(t, "ptrace", strconv.Itoa(host.Process.Pid)) {
			t.Fatal("control: host cannot ptrace")
		}
		if ok, out := s.probe(t, name, "ptrace", strconv.Itoa(p.PID)); ok {
			t.Errorf("sandbox traced its sibling %d: %s", p.PID, out)
		}
	})
}

// testNetwork: with network on, an upstream beyond the host is reached,
// and the host stays out of reach: a server on every host address is
// reachable from the host and from nowhere in the sandbox, by the
// gateway's address or the host's own, and the cloud metadata address is
// refused too.
func (s *suite) testNetwork(t *testing.T) {
	// The control: the network works, an upstream outside the host is
	// reached, over IPv4 and IPv6.
	up := testutil.NewUpstream(t)
	for _, a := range []netip.Addr{up.A, up.A6} {
		addr := netip.AddrPortFrom(a, 80).String()
		if ok, out := s.probe(t, s.shared, "connect", addr); !ok {
			t.Errorf("sandbox cannot reach the upstream %s: %s", addr, out)
		}
	}
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go acceptAndClose(l)
	_, port, _ := net.SplitHostPort(l.Addr().String())
	targets := []string{net.JoinHostPort("10.0.2.2", port), "169.254.169.254:80"}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				host := net.JoinHostPort(n.IP.String(), port)
				if !s.hostProbe(t, "connect", host) {
					t.Fatalf("control: the host cannot reach %s", host)
				}
				targets = append(targets, host)
				break
			}
		}
	}
	for _, addr := range targets {
		if ok, out := s.probe(t, s.shared, "connect", addr); ok {
			t.Errorf("sandbox reached %s: %s", addr, out)
		}
	}
}

// acceptAndClose serves l: every connection is accepted and closed, which
// is all a reachability probe needs.
func acceptAndClose(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}
