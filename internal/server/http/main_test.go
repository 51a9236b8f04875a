//go:build linux

package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/backend/native"
	"github.com/agentkernel-go/agentkernel/internal/image/ingest"
	httpapi "github.com/agentkernel-go/agentkernel/internal/server/http"
	"github.com/agentkernel-go/agentkernel/internal/service"
	"github.com/agentkernel-go/agentkernel/internal/setup"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

func TestMain(m *testing.M) {
	native.MaybeInit() // sandboxes' init stage re-executes the test binary
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

// apiServer is a live API on loopback over a manager with a private root.
type apiServer struct {
	t    *testing.T
	url  string
	mgr  *service.Manager
	key  string
	stop func() error
}

// newAPI starts a server; edit adjusts its options. Cleanup shuts it down
// and fails the test if any sandbox is left.
func newAPI(t *testing.T, edit ...func(*httpapi.Options)) *apiServer {
	t.Helper()
	return newAPIEnv(t, nil, edit...)
}

// newAPIEnv is newAPI with more environment for the manager.
func newAPIEnv(t *testing.T, extra map[string]string, edit ...func(*httpapi.Options)) *apiServer {
	t.Helper()
	testutil.RequireLinux(t)
	testutil.RequireRoot(t)
	agent := testutil.BuildBinary(t, "agentkernel-agent")
	root := t.TempDir()
	// No network path: these tests are about the API (the network path
	// has tests of its own), and no daemon may outlive them.
	env := map[string]string{"AGENTKERNEL_AGENT": agent, "AGENTKERNEL_POOL": "0", "AGENTKERNEL_SERVER": "/nonexistent/agentkernel-server"}
	maps.Copy(env, extra)
	mgr, agentErr, err := setup.Manager(context.Background(), setup.Config{Fetcher: ingest.New,
		Root: root, Getenv: func(k string) string { return env[k] },
	})
	if err != nil || agentErr != nil {
		t.Fatal(err, agentErr)
	}
	opts := httpapi.Options{}
	for _, e := range edit {
		e(&opts)
	}
	srv, err := httpapi.New(mgr, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, "", "") }()
	a := &apiServer{t: t, url: "http://" + ln.Addr().String(), mgr: mgr}
	if len(opts.APIKeys) > 0 {
		a.key = opts.APIKeys[0]
	}
	var stopped bool
	var stopErr error
	a.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			stopErr = <-done
		}
		return stopErr
	}
	t.Cleanup(func() {
		if err := a.stop(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		list, err := mgr.List(context.Background())
		if err != nil || len(list) > 0 {
			t.Errorf("sandboxes left after the test: %v %v", list, err)
			for _, in := range list {
				mgr.Remove(context.Background(), in.Name)
			}
		}
		mgr.Close()
	})
	return a
}

// reply is a decoded response.
type reply struct {
	status int
	env    struct {
		Success bool            `json:"success"`
		Data    json.RawMessage `json:"data"`
		Error   string          `json:"error"`
	}
	raw string
}

func (r *reply) data(v any) {
	if err := json.Unmarshal(r.env.Data, v); err != nil {
		panic(err)
	}
}

// do sends a request with the API key (if any) and decodes the envelope.
func (a *apiServer) do(method, path string, body any) *reply {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.url+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if a.key != "" {
		req.Header.Set("Authorization", "Bearer "+a.key)
	}
	return a.send(req)
}

func (a *apiServer) send(req *http.Request) *reply {
	a.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := &reply{status: resp.StatusCode, raw: string(raw)}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		a.t.Fatalf("%s %s: content type %q, body %q", req.Method, req.URL, ct, raw)
	}
	if err := json.Unmarshal(raw, &r.env); err != nil {
		a.t.Fatalf("%s %s: not an envelope: %q", req.Method, req.URL, raw)
	}
	if r.env.Success != (resp.StatusCode < 300) || (!r.env.Success && r.env.Error == "") {
		a.t.Fatalf("%s %s: envelope %q does not match status %d", req.Method, req.URL, raw, resp.StatusCode)
	}
	return r
}

// expect fails the test unless r has the status.
func (r *reply) expect(t *testing.T, status int, what string) *reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.raw)
	}
	return r
}

// sseEvent is one server-sent event and when it arrived.
type sseEvent struct {
	name string
	data map[string]any
	at   time.Time
}

// readEvents parses server-sent events from r onto a channel as they arrive.
func readEvents(r io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data)
			case line == "":
				ev.at = time.Now()
				ch <- ev
				ev = sseEvent{}
			}
		}
	}()
	return ch
}
