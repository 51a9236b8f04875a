//go:build linux

package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// TestE2ENetwork drives the network path through the CLI: a sandbox with
// an allow-list reaches what it allows (by name, over the sandbox's
// resolver) and nothing else, takes new rules while it runs, audits its
// refusals, and publishes a port that is free again once it is gone.
func TestE2ENetwork(t *testing.T) {
	e := newE2E(t)
	up := testutil.NewUpstream(t, "allowed.test", "other.test", "denied.test")
	name := "e2e-net"
	e.ok("create", "--start", name, "--allowlist-only", "--allow-domain", "allowed.test", "--deny-domain", "denied.test",
		"--add-host", "allowed.test:"+up.A.String(), "--add-host", "other.test:"+up.A.String(), "--add-host", "denied.test:"+up.B.String(),
		"--publish", "8080")
	defer e.ok("remove", "--force", name)

	// get fetches http://host/ through addr (a name or an address) from
	// inside, with bash's /dev/tcp: the command's output, and its exit.
	get := func(host, addr string) (string, int) {
		script := fmt.Sprintf(`exec 3<>/dev/tcp/%s/80 || exit 7; printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' >&3; cat <&3`, addr, host)
		r := e.run(nil, "exec", name, "--", "bash", "-c", script)
		return r.stdout, r.code
	}
	if out, code := get("allowed.test", "allowed.test"); code != 0 || !strings.Contains(out, "hello allowed.test") {
		t.Errorf("the allowed domain: exit %d, %q", code, out)
	}
	if r := e.run(nil, "exec", name, "--", "getent", "hosts", "denied.test"); r.code == 0 {
		t.Errorf("the denied domain resolved: %s", r.stdout)
	}
	if out, code := get("denied.test", up.B.String()); code != 7 {
		t.Errorf("the denied domain's address: exit %d, %q", code, out)
	}
	if out, _ := get("other.test", up.A.String()); strings.Contains(out, "hello") {
		t.Errorf("a Host that is not allowed reached an allowed address: %q", out)
	}
	for _, addr := range []string{up.Host.String(), "169.254.169.254", "10.0.2.2"} {
		if out, code := get("allowed.test", addr); code != 7 {
			t.Errorf("%s (host, metadata, gateway) reachable: exit %d, %q", addr, code, out)
		}
	}

	// New rules apply to new connections of the running sandbox.
	e.ok("sandbox", "network", name, "--allow-domain", "other.test")
	if out, code := get("other.test", "other.test"); code != 0 || !strings.Contains(out, "hello other.test") {
		t.Errorf("after allowing other.test: exit %d, %q", code, out)
	}
	if out := e.ok("sandbox", "network", name, "--json"); !strings.Contains(out, "other.test") {
		t.Errorf("sandbox network --json: %s", out)
	}
	e.fails(2, "domain pattern", "sandbox", "network", name, "--allow-domain", "not a name")

	// Refusals are in the sandbox's audit log, with the rule.
	audit, _ := os.ReadFile(filepath.Join(e.root, "sandboxes", name, "audit.jsonl"))
	for _, want := range []string{`"network_denied"`, `deny-domain denied.test`, `"domain":"other.test"`, `an address of the host`} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("audit log lacks %s:\n%s", want, audit)
		}
	}

	// A published port: a server in the sandbox answers on the host.
	e.ok("exec", "-d", name, "--", "perl", "-MIO::Socket::INET", "-e",
		`$s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die; while ($c = $s->accept) { print $c "hello from the sandbox\n"; close $c }`)
	var info struct {
		Ports []struct {
			HostPort uint16 `json:"host_port"`
		} `json:"published_ports"`
	}
	if err := json.Unmarshal([]byte(e.ok("info", "--json", name)), &info); err != nil || len(info.Ports) != 1 || info.Ports[0].HostPort == 0 {
		t.Fatalf("info --json: %+v %v", info, err)
	}
	hostAddr := fmt.Sprintf("127.0.0.1:%d", info.Ports[0].HostPort)
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", hostAddr); err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			body, _ = io.ReadAll(c)
			c.Close()
		}
		if strings.Contains(string(body), "hello from the sandbox") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(string(body), "hello from the sandbox") {
		t.Errorf("published port %s: %q", hostAddr, body)
	}
	e.ok("remove", "--force", name)
	ln, err := net.Listen("tcp", hostAddr)
	if err != nil {
		t.Errorf("%s still taken after the sandbox is gone: %v", hostAddr, err)
	} else {
		ln.Close()
	}
}

// TestE2ERunHasNetwork: the default profile's run reaches the network by
// name, through the sandbox's resolver.
func TestE2ERunHasNetwork(t *testing.T) {
	e := newE2E(t)
	up := testutil.NewUpstream(t, "web.test")
	out := e.ok("run", "--add-host", "web.test:"+up.A.String(), "--", "bash", "-c",
		`cat /etc/resolv.conf; exec 3<>/dev/tcp/web.test/80; printf 'GET / HTTP/1.0\r\nHost: web.test\r\n\r\n' >&3; cat <&3`)
	if !strings.Contains(out, "nameserver 10.0.2.3") || !strings.Contains(out, "hello web.test") {
		t.Errorf("run with network: %q", out)
	}
}
