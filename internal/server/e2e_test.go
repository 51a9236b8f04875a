//go:build linux

package server_test

// End-to-end: the built agentkernel-server, driven by the published npm SDK.

import (
	"net/http"

	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentkernel-go/agentkernel/internal/image/ingest"
	"github.com/agentkernel-go/agentkernel/internal/setup"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

var sdkDir struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	if sdkDir.path != "" {
		os.RemoveAll(sdkDir.path)
	}
	os.Exit(code)
}

// installSDK installs agentkernel@0.18.1 and the test script
// (http/testdata/sdk) into a temp dir, once per test process.
func installSDK(t *testing.T) string {
	t.Helper()
	_, nodeErr := exec.LookPath("node")
	_, npmErr := exec.LookPath("npm")
	testutil.Require(t, nodeErr == nil && npmErr == nil, "needs node and npm for the SDK test (scripts/test.sh installs them)")
	sdkDir.once.Do(func() {
		dir, err := os.MkdirTemp("", "agentkernel-test-sdk-")
		if err != nil {
			sdkDir.err = err
			return
		}
		sdkDir.path = dir
		for _, f := range []string{"package.json", "sdk.test.mjs"} {
			raw, err := os.ReadFile(filepath.Join("http", "testdata", "sdk", f))
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, f), raw, 0o644)
			}
			if err != nil {
				sdkDir.err = err
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--no-package-lock", "--no-update-notifier")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "npm_config_cache="+filepath.Join(dir, ".npm-cache"))
		sdkDir.out, sdkDir.err = cmd.CombinedOutput()
	})
	if sdkDir.err != nil {
		t.Fatalf("npm install agentkernel@0.18.1: %v\n%s", sdkDir.err, sdkDir.out)
	}
	return sdkDir.path
}

// server is a running agentkernel-server.
type server struct {
	cmd  *exec.Cmd
	addr string
	log  *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listening = regexp.MustCompile(`listening on (\S+)`)

func startServer(t *testing.T, bin string, env []string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, log: &syncBuffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			s.log.Write([]byte(line + "\n"))
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	go func() { s.done <- cmd.Wait(); pw.Close() }()
	select {
	case s.addr = <-addr:
	case err := <-s.done:
		t.Fatalf("server exited: %v\n%s", err, s.log)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("server did not report its address:\n%s", s.log)
	}
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("server exit: %v\n%s", err, s.log)
		}
	case <-time.After(90 * time.Second):
		s.cmd.Process.Kill()
		t.Errorf("server did not stop on SIGTERM:\n%s", s.log)
	}
}

func TestSDKAgainstServer(t *testing.T) {
	testutil.RequireLinux(t)
	testutil.RequireRoot(t)
	sdk := installSDK(t)
	bin := testutil.BuildBinary(t, "agentkernel-server")
	agent := testutil.BuildBinary(t, "agentkernel-agent")
	root := filepath.Join(t.TempDir(), "root")
	keyFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keyFile, []byte("# keys\nsecret-sdk-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The warm pool stays on: the server maintains it in-process.
	srv := startServer(t, bin, []string{"AGENTKERNEL_AGENT=" + agent, "AGENTKERNEL_API_KEY=", "AGENTKERNEL_POOL=1", noNetwork},
		"--root", root, "serve", "--port", "0", "--api-key-file", keyFile, "--log-level", "info")
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.stop(t)
		}
		cleanRoot(t, root, agent)
	})

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	node := exec.CommandContext(ctx, "node", "sdk.test.mjs")
	node.Dir = sdk
	node.Env = append(os.Environ(), "AGENTKERNEL_BASE_URL=http://"+srv.addr, "AGENTKERNEL_API_KEY=secret-sdk-key")
	out, err := node.CombinedOutput()
	if err != nil {
		t.Fatalf("SDK test: %v\n%s\nserver log:\n%s", err, out, srv.log)
	}
	t.Logf("SDK test:\n%s", out)
	mcpOverHTTP(t, ctx, "http://"+srv.addr+"/mcp", "secret-sdk-key")
	srv.stop(t)
	stopped = true
}

// mcpOverHTTP drives the server's /mcp with the go-sdk client: without the
// key it is refused; with it, tools list and a run works.
func mcpOverHTTP(t *testing.T, ctx context.Context, url, key string) {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	if _, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, nil); err == nil {
		t.Fatal("/mcp accepted a client without the API key")
	}
	withKey := &http.Client{Transport: bearer{key: key, next: http.DefaultTransport}}
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: withKey}, nil)
	if err != nil {
		t.Fatalf("/mcp with the key: %v", err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) < 20 {
		t.Fatalf("/mcp tools: %v", err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "sandbox_run", Arguments: map[string]any{"command": []string{"echo", "over http"}}})
	if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "over http\n" {
		t.Fatalf("/mcp sandbox_run: %v %+v", err, res)
	}
	mcpSandboxSession(t, ctx, cs, "mcp-http")
}

type bearer struct {
	key  string
	next http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.next.RoundTrip(r)
}

// cleanRoot removes the warm pool the server left (pool sandboxes outlive
// it by design) and fails if any other sandbox is left.
func cleanRoot(t *testing.T, root, agent string) {
	t.Helper()
	env := map[string]string{"AGENTKERNEL_AGENT": agent, "AGENTKERNEL_SERVER": noServer}
	mgr, _, err := setup.Manager(context.Background(), setup.Config{Fetcher: ingest.New, Root: root, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	if _, err := mgr.DrainPool(context.Background()); err != nil {
		t.Errorf("draining the pool: %v", err)
	}
	list, _ := mgr.List(context.Background())
	for _, in := range list {
		t.Errorf("left behind: %s (%s)", in.Name, in.Status)
		mgr.Remove(context.Background(), in.Name)
	}
}

func TestServeFlags(t *testing.T) {
	bin := testutil.BuildBinary(t, "agentkernel-server")
	for _, args := range [][]string{
		{"--port", "99999"},
		{"--tls-cert", "x.pem"},
		{"--no-such-flag"},
		{"--api-key-file", "/nonexistent/keys"},
		{"extra"},
	} {
		cmd := exec.Command(bin, append([]string{"--root", t.TempDir(), "serve"}, args...)...)
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("serve %q: %v, want exit 2\n%s", args, err, out)
		}
	}
}

// Servers under test get no network path (the network path has tests of
// its own), so that no network daemon outlives a test.
const (
	noServer  = "/nonexistent/agentkernel-server"
	noNetwork = "AGENTKERNEL_SERVER=" + noServer
)
