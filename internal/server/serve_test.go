//go:build linux

package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	srvpkg "github.com/agentkernel-go/agentkernel/internal/server"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

var fingerprintLine = regexp.MustCompile(`self-signed TLS certificate for (\S+), valid until (\S+), SHA-256 fingerprint ([0-9A-F:]{95})`)

// pinnedClient trusts exactly the certificate whose SHA-256 fingerprint
// is fp, as a client pinning the logged fingerprint does.
func pinnedClient(fp string) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || srvpkg.Fingerprint(cs.PeerCertificates[0].Raw) != fp {
				return errors.New("certificate does not match the pinned fingerprint")
			}
			return nil
		},
	}}}
}

func get(t *testing.T, c *http.Client, url, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeTLSSelfSigned(t *testing.T) {
	testutil.RequireLinux(t)
	bin := testutil.BuildBinary(t, "agentkernel-server")
	srv := startServer(t, bin, []string{"AGENTKERNEL_API_KEY=", "AGENTKERNEL_POOL=0"},
		"--root", t.TempDir(), "serve", "--port", "0", "--tls-self-signed")
	defer srv.stop(t)
	m := fingerprintLine.FindStringSubmatch(srv.log.String())
	if m == nil {
		t.Fatalf("no fingerprint line:\n%s", srv.log)
	}
	if !strings.Contains(m[1], "localhost") || !strings.Contains(m[1], "127.0.0.1") {
		t.Errorf("certificate names %s, want localhost and 127.0.0.1", m[1])
	}
	if !strings.Contains(srv.log.String(), "(https, api key off)") {
		t.Errorf("listening line does not say https:\n%s", srv.log)
	}
	fp := m[3]
	code, body := get(t, pinnedClient(fp), "https://"+srv.addr+"/health", "")
	if code != 200 || !strings.Contains(body, `"data":"ok"`) {
		t.Fatalf("health: %d %s", code, body)
	}

	// The certificate verifies for the served address as a normal client
	// checks it, once trusted, and is an ECDSA P-256 one.
	var leaf *x509.Certificate
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			leaf = cs.PeerCertificates[0]
			return nil
		},
	}}}
	get(t, c, "https://"+srv.addr+"/health", "")
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("verify for 127.0.0.1: %v", err)
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA || srvpkg.Fingerprint(leaf.Raw) != fp {
		t.Errorf("leaf: %v, fingerprint %s, logged %s", leaf.PublicKeyAlgorithm, srvpkg.Fingerprint(leaf.Raw), fp)
	}
	// A wrong pin is refused.
	if _, err := pinnedClient(strings.Repeat("00:", 31) + "00").Get("https://" + srv.addr + "/health"); err == nil {
		t.Error("a wrong pin was accepted")
	}
}

func TestServeConfigFile(t *testing.T) {
	testutil.RequireLinux(t)
	bin := testutil.BuildBinary(t, "agentkernel-server")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "server.toml")
	// The file's port is taken unless a flag says otherwise; the file's
	// TLS certificate gives way to --tls-self-signed.
	if err := os.WriteFile(cfg, []byte(`
host = "127.0.0.1"
port = 1
api_key = "file-key"
api_keys = ["file-key-2"]
tls_cert = "/nonexistent/cert.pem"
tls_key = "/nonexistent/key.pem"
log_level = "info"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, bin, []string{"AGENTKERNEL_API_KEY=env-key", "AGENTKERNEL_POOL=0"},
		"--root", t.TempDir(), "serve", "--config", cfg, "--port", "0", "--tls-self-signed")
	defer srv.stop(t)
	m := fingerprintLine.FindStringSubmatch(srv.log.String())
	if m == nil || !strings.Contains(srv.log.String(), "api key on") {
		t.Fatalf("log:\n%s", srv.log)
	}
	c := pinnedClient(m[3])
	base := "https://" + srv.addr
	if code, body := get(t, c, base+"/sandboxes", ""); code != 401 {
		t.Fatalf("no key: %d %s", code, body)
	}
	for _, k := range []string{"file-key", "file-key-2", "env-key"} {
		code, body := get(t, c, base+"/sandboxes", k)
		var env struct{ Success bool }
		if code != 200 || json.Unmarshal([]byte(body), &env) != nil || !env.Success {
			t.Errorf("key %s: %d %s", k, code, body)
		}
	}

	// --api-key wins over the file's keys; the environment's still adds one.
	srv2 := startServer(t, bin, []string{"AGENTKERNEL_API_KEY=env-key", "AGENTKERNEL_POOL=0"},
		"--root", t.TempDir(), "serve", "--config", cfg, "--port", "0", "--tls-self-signed", "--api-key", "flag-key")
	defer srv2.stop(t)
	c2 := pinnedClient(fingerprintLine.FindStringSubmatch(srv2.log.String())[3])
	for k, want := range map[string]int{"flag-key": 200, "env-key": 200, "file-key": 401} {
		if code, body := get(t, c2, "https://"+srv2.addr+"/sandboxes", k); code != want {
			t.Errorf("key %s with --api-key: %d, want %d: %s", k, code, want, body)
		}
	}
}

// TestServeConfigErrors: a bad file or conflicting TLS options are usage
// errors (exit 2) with a message naming the problem.
func TestServeConfigErrors(t *testing.T) {
	bin := testutil.BuildBinary(t, "agentkernel-server")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", write("unknown.toml", "port = 0\nlisten = \"x\"\n")}, "unknown keys listen (line 2)"},
		{[]string{"--config", write("type.toml", "port = \"high\"\n")}, "type.toml:1"},
		{[]string{"--config", write("syntax.toml", "port = \n")}, "syntax.toml:1"},
		{[]string{"--config", filepath.Join(dir, "missing.toml")}, "--config"},
		{[]string{"--config", write("range.toml", "port = 70000\n")}, "out of range"},
		{[]string{"--config", write("both.toml", "tls_cert = \"c\"\ntls_key = \"k\"\ntls_self_signed = true\n")}, "exclude each other"},
		{[]string{"--tls-self-signed", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "exclude each other"},
	} {
		cmd := exec.Command(bin, append([]string{"--root", t.TempDir(), "serve"}, tc.args...)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("serve %q: %v, want exit 2 and %q\n%s", tc.args, err, tc.want, out)
		}
	}
}
