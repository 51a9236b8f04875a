//go:build linux

package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// wsSession is a test's client end of a WebSocket session.
type wsSession struct {
	t        *testing.T
	c        *websocket.Conn
	tagged   bool // exec/ws: output frames carry a stream byte
	out, err bytes.Buffer
	exit     map[string]any
	errors   []string // the server's error frames
}

// dialWS opens path on a's server with its key; it returns the failed
// handshake's status and envelope instead when there is one.
func (a *apiServer) dialWS(path string) (*wsSession, *reply) {
	a.t.Helper()
	h := http.Header{}
	if a.key != "" {
		h.Set("Authorization", "Bearer "+a.key)
	}
	ctx, cancel := context.WithTimeout(a.t.Context(), 30*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(a.url, "http")+path, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		if resp == nil {
			a.t.Fatalf("dial %s: %v", path, err)
		}
		r := &reply{status: resp.StatusCode}
		raw, _ := io.ReadAll(resp.Body)
		r.raw = string(raw)
		if jerr := json.Unmarshal(raw, &r.env); jerr != nil || r.env.Success || r.env.Error == "" {
			a.t.Fatalf("dial %s: %d, not an error envelope: %q (%v)", path, resp.StatusCode, raw, err)
		}
		return nil, r
	}
	c.SetReadLimit(16 << 20)
	s := &wsSession{t: a.t, c: c, tagged: strings.Contains(path, "/exec/ws")}
	a.t.Cleanup(func() { c.CloseNow() })
	return s, nil
}

func (s *wsSession) send(typ websocket.MessageType, msg string) {
	s.t.Helper()
	if err := s.c.Write(s.t.Context(), typ, []byte(msg)); err != nil {
		s.t.Fatalf("send %q: %v", msg, err)
	}
}

// next reads one message into the session's state; false once the server
// closed.
func (s *wsSession) next(ctx context.Context) bool {
	s.t.Helper()
	typ, data, err := s.c.Read(ctx)
	if err != nil {
		if websocket.CloseStatus(err) == websocket.StatusNormalClosure && s.exit != nil {
			return false
		}
		s.t.Fatalf("read: %v (stdout %q, stderr %q)", err, s.out.String(), s.err.String())
	}
	if typ == websocket.MessageText {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			s.t.Fatalf("text frame %q: %v", data, err)
		}
		switch m["type"] {
		case "exit":
			if s.exit != nil {
				s.t.Fatalf("a second exit frame: %q", data)
			}
			s.exit = m
		case "error":
			s.errors = append(s.errors, m["message"].(string))
		default:
			s.t.Fatalf("unexpected text frame %q", data)
		}
		return true
	}
	if s.exit != nil {
		s.t.Fatalf("output after the exit frame: %q", data)
	}
	if !s.tagged {
		s.out.Write(data)
		return true
	}
	if len(data) < 2 {
		s.t.Fatalf("output frame %q: want a stream byte and data", data)
	}
	switch data[0] {
	case 1:
		s.out.Write(data[1:])
	case 2:
		s.err.Write(data[1:])
	default:
		s.t.Fatalf("output frame with stream byte %d", data[0])
	}
	return true
}

// until reads until stdout contains want.
func (s *wsSession) until(want string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), 20*time.Second)
	defer cancel()
	for !strings.Contains(s.out.String(), want) {
		if !s.next(ctx) {
			s.t.Fatalf("closed before %q appeared: %q", want, s.out.String())
		}
	}
}

// wait reads to the exit frame and the normal closure, and returns the
// exit code.
func (s *wsSession) wait() int {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), 20*time.Second)
	defer cancel()
	for s.next(ctx) {
	}
	return int(s.exit["exit_code"].(float64))
}

// newWSSandbox starts a sandbox for a test and removes it after.
func newWSSandbox(t *testing.T, a *apiServer, name string) {
	t.Helper()
	a.do("POST", "/sandboxes", map[string]any{"name": name}).expect(t, 201, "create")
	t.Cleanup(func() {
		if err := a.mgr.Remove(context.Background(), name); err != nil {
			t.Error(err)
		}
	})
}

func TestAttachWS(t *testing.T) {
	a := newAPI(t, withKeys("ws-key"))
	newWSSandbox(t, a, "tty")

	s, _ := a.dialWS("/sandboxes/tty/attach?cmd=sh")
	s.send(websocket.MessageBinary, "echo $((6*7))\n")
	s.until("42")
	s.send(websocket.MessageBinary, "exit 3\n")
	if code := s.wait(); code != 3 {
		t.Fatalf("exit code %d, want 3; output %q", code, s.out.String())
	}

	// The window size: from the query, then from a resize message.
	s, _ = a.dialWS("/sandboxes/tty/attach?cmd=sh&cols=100&rows=30&env=GREETING%3Dhi%20there")
	s.send(websocket.MessageBinary, "stty size; echo \"[$TERM] [$GREETING]\"\n")
	s.until("30 100")
	s.until("[xterm-256color] [hi there]")
	s.send(websocket.MessageText, `{"type":"resize","cols":50,"rows":20}`)
	s.send(websocket.MessageBinary, "stty size\n")
	s.until("20 50")
	// A bad control message is reported; the session goes on.
	s.send(websocket.MessageText, `{"type":"nope"}`)
	s.send(websocket.MessageText, `{"type":"signal","signal":"BOGUS"}`)
	s.send(websocket.MessageBinary, "exit\n")
	if code := s.wait(); code != 0 {
		t.Fatalf("exit code %d; output %q", code, s.out.String())
	}
	if len(s.errors) != 2 || !strings.Contains(s.errors[0], "unknown type") || !strings.Contains(s.errors[1], "BOGUS") {
		t.Fatalf("error frames %q", s.errors)
	}

	// The default command is a shell.
	s, _ = a.dialWS("/sandboxes/tty/attach")
	s.send(websocket.MessageBinary, "echo $((1+1))x; exit 5\n")
	s.until("2x")
	if code := s.wait(); code != 5 {
		t.Fatalf("default shell: exit code %d", code)
	}
}

func TestExecWS(t *testing.T) {
	a := newAPI(t, withKeys("ws-key"))
	newWSSandbox(t, a, "pipe")

	s, _ := a.dialWS("/sandboxes/pipe/exec/ws?cmd=sh&cmd=-c&cmd=echo+oops+%3E%262%3B+cat")
	s.send(websocket.MessageBinary, "hello\n")
	s.until("hello\n") // echoed while stdin is still open
	s.send(websocket.MessageBinary, "world")
	s.send(websocket.MessageText, `{"type":"eof"}`)
	if code := s.wait(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if s.out.String() != "hello\nworld" || s.err.String() != "oops\n" {
		t.Fatalf("stdout %q, stderr %q", s.out.String(), s.err.String())
	}

	// A signal by name ends the process with 128+15.
	s, _ = a.dialWS("/sandboxes/pipe/exec/ws?cmd=sh&cmd=-c&cmd=echo+ready%3B+exec+sleep+100")
	s.until("ready")
	s.send(websocket.MessageText, `{"type":"signal","signal":"TERM"}`)
	if code := s.wait(); code != 143 || s.exit["signal"] != float64(15) {
		t.Fatalf("after SIGTERM: exit %v", s.exit)
	}

	// A failing command's exit code, and output larger than one frame.
	s, _ = a.dialWS("/sandboxes/pipe/exec/ws?cmd=sh&cmd=-c&cmd=head+-c+300000+/dev/zero%3B+exit+7")
	if code := s.wait(); code != 7 || s.out.Len() != 300000 {
		t.Fatalf("exit %d, %d bytes of output", code, s.out.Len())
	}
}

func TestWSErrorsBeforeUpgrade(t *testing.T) {
	a := newAPI(t, withKeys("ws-key"))
	newWSSandbox(t, a, "errs")
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/sandboxes/no-such-sandbox/attach", 404},
		{"/sandboxes/no-such-sandbox/exec/ws?cmd=true", 404},
		{"/sandboxes/errs/exec/ws", 400},                      // no command
		{"/sandboxes/errs/exec/ws?cmd=true&cols=80", 400},     // a PTY option without a PTY
		{"/sandboxes/errs/attach?cols=0", 400},                // bad size
		{"/sandboxes/errs/attach?env=NOEQUALS", 400},          // bad env
		{"/sandboxes/errs/attach?cmd=sh&workdir=rel", 400},    // relative workdir
		{"/sandboxes/errs/attach?command=sh", 400},            // unknown parameter
		{"/sandboxes/errs/exec/ws?cmd=/no/such/program", 404}, // the command does not exist
	} {
		s, r := a.dialWS(tc.path)
		if s != nil || r.status != tc.status {
			t.Errorf("%s: upgraded or status %v, want %d", tc.path, r, tc.status)
		}
	}
	// Not a WebSocket handshake.
	a.do("GET", "/sandboxes/errs/attach", nil).expect(t, http.StatusUpgradeRequired, "plain GET")
	// Missing or wrong key: 401 before anything else.
	for _, k := range []string{"", "wrong"} {
		a.key = k
		if _, r := a.dialWS("/sandboxes/errs/attach"); r.status != 401 {
			t.Errorf("key %q: status %d, want 401", k, r.status)
		}
	}
	a.key = "ws-key"
	// A page of another origin may not drive a sandbox.
	req, _ := http.NewRequest("GET", a.url+"/sandboxes/errs/attach", nil)
	req.Header.Set("Authorization", "Bearer ws-key")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Origin", "https://evil.example")
	a.send(req).expect(t, 403, "cross-origin upgrade")
}

// sleepers lists host pids whose command line is exactly argv.
func sleepers(argv ...string) []string {
	want := strings.Join(argv, "\x00") + "\x00"
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && string(cmd) == want {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func TestWSDisconnectKillsProcess(t *testing.T) {
	a := newAPI(t)
	before := testutil.Snapshot()
	a.do("POST", "/sandboxes", `{"name": "gone"}`).expect(t, 201, "create")
	for i, tc := range []struct {
		path  string
		close func(c *websocket.Conn)
	}{
		// Dropped without a close frame.
		{"/sandboxes/gone/exec/ws?cmd=sh&cmd=-c&cmd=echo+ready%3B+exec+sleep+4242", func(c *websocket.Conn) { c.CloseNow() }},
		// Closed properly before the process ended.
		{"/sandboxes/gone/attach?cmd=sh&cmd=-c&cmd=echo+ready%3B+exec+sleep+4243", func(c *websocket.Conn) {
			c.Close(websocket.StatusNormalClosure, "bye")
		}},
	} {
		s, _ := a.dialWS(tc.path)
		s.until("ready")
		arg := []string{"4242", "4243"}[i]
		for deadline := time.Now().Add(10 * time.Second); len(sleepers("sleep", arg)) == 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("sleep %s never showed up", arg)
			}
		}
		tc.close(s.c)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if len(sleepers("sleep", arg)) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sleep %s still running after the client left: pids %v", arg, sleepers("sleep", arg))
			}
		}
	}
	// The sandbox itself is unharmed and serves the next request.
	r := a.do("POST", "/sandboxes/gone/exec", `{"command": ["echo", "still here"]}`).expect(t, 200, "exec after")
	if !strings.Contains(r.raw, "still here") {
		t.Fatalf("exec after: %s", r.raw)
	}
	a.do("DELETE", "/sandboxes/gone", nil).expect(t, 200, "delete")
	testutil.CheckNoLeaks(t, before)
}

func TestWSShutdownEndsSession(t *testing.T) {
	a := newAPI(t)
	a.do("POST", "/sandboxes", `{"name": "shut"}`).expect(t, 201, "create")
	s, _ := a.dialWS("/sandboxes/shut/exec/ws?cmd=sh&cmd=-c&cmd=echo+ready%3B+exec+sleep+4244")
	s.until("ready")
	done := make(chan error, 1)
	go func() { done <- a.stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("shutdown hangs on a WebSocket session")
	}
	for deadline := time.Now().Add(10 * time.Second); len(sleepers("sleep", "4244")) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the session's process outlived the server")
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, _, err := s.c.Read(ctx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("connection still open after shutdown: %v", err)
	}
	if err := a.mgr.Remove(context.Background(), "shut"); err != nil {
		t.Fatal(err)
	}
}

// A process that ends without reading a flood of stdin: the session must
// still end with its exit frame.
func TestExecWSProcessIgnoresStdin(t *testing.T) {
	a := newAPI(t)
	newWSSandbox(t, a, "flood")
	s, _ := a.dialWS("/sandboxes/flood/exec/ws?cmd=sh&cmd=-c&cmd=echo+ready%3B+sleep+1")
	s.until("ready")
	go func() {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 400 { // 25 MiB, more than the agent's queue and the stream's window
			if s.c.Write(t.Context(), websocket.MessageBinary, chunk) != nil {
				return
			}
		}
	}()
	if code := s.wait(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
