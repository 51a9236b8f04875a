package httpapi

// WebSocket sessions: an interactive PTY (attach) and exec with live stdin.
//
//	GET /sandboxes/{name}/attach?cmd=bash&cmd=-l&cols=120&rows=40&env=K%3DV&workdir=/src
//	GET /sandboxes/{name}/exec/ws?cmd=cat&env=K%3DV&workdir=/src
//
// Query: cmd is the command, one argv element per parameter in order
// (attach defaults to bash where the sandbox has it, else sh; exec/ws needs
// one); env (repeatable) is KEY=VALUE; workdir an absolute path; cols and
// rows (attach only) the window size, default 80x24.
//
// Frames, client → server: binary frames are stdin bytes; text frames are
// JSON control messages {"type":"resize","cols":N,"rows":M},
// {"type":"signal","signal":"INT"} (a name, with or without SIG, or a
// number) and {"type":"eof"} (closes stdin).
//
// Server → client: binary frames are output — attach: the terminal's bytes
// as they are; exec/ws: one leading byte, 1 stdout or 2 stderr, then the
// bytes. When the process ends a text frame {"type":"exit","exit_code":N}
// (with "signal" and "timed_out" when they apply) is the last message and
// the server closes with a normal closure. A bad control message gets
// {"type":"error","message":"…"} and the session goes on.
//
// Everything that can fail before the process starts — the API key,
// unknown sandbox (404), a stopped one (409), bad query (400), a command
// that does not exist — is answered as a plain HTTP envelope before the
// upgrade. The API key travels in the Authorization header like every
// other route: a key in the URL would end up in logs and browser history,
// so it is not accepted there; browsers, which cannot set headers on a
// WebSocket, go through a same-origin proxy that adds it. Cross-origin
// upgrades (an Origin other than the Host) are refused.
//
// The session lives as long as the connection: a client that disconnects
// or closes before the exit frame kills the process.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
)

// Stream tags of exec/ws output frames.
const (
	wsStdout byte = 1
	wsStderr byte = 2
)

// wsReadLimit bounds one client message (a stdin chunk or a control message).
const wsReadLimit = 1 << 20

// wsControl is a client's text frame.
type wsControl struct {
	Type   string          `json:"type"`
	Cols   uint16          `json:"cols"`
	Rows   uint16          `json:"rows"`
	Signal json.RawMessage `json:"signal"`
}

// wsExit is the server's last message.
type wsExit struct {
	Type     string `json:"type"` // "exit"
	ExitCode int    `json:"exit_code"`
	Signal   int    `json:"signal,omitempty"`
	TimedOut bool   `json:"timed_out,omitempty"`
}

// wsError reports a bad control message, or why the session broke.
type wsError struct {
	Type    string `json:"type"` // "error"
	Message string `json:"message"`
}

// attachWS is GET /sandboxes/{name}/attach: a command on a PTY.
func (s *Server) attachWS(w http.ResponseWriter, r *http.Request, p params) {
	s.serveWS(w, r, p["name"], true)
}

// execWS is GET /sandboxes/{name}/exec/ws: a command with live stdin and
// tagged stdout/stderr, no PTY.
func (s *Server) execWS(w http.ResponseWriter, r *http.Request, p params) {
	s.serveWS(w, r, p["name"], false)
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, name string, tty bool) {
	spec, err := wsSpec(r.URL.Query(), tty)
	if err != nil {
		fail(w, err, nil)
		return
	}
	if msg := checkUpgrade(r); msg != "" {
		w.Header().Set("Upgrade", "websocket")
		writeJSON(w, http.StatusUpgradeRequired, envelope{Error: msg})
		return
	}
	if msg := checkOrigin(r); msg != "" {
		writeJSON(w, http.StatusForbidden, envelope{Error: msg})
		return
	}
	// The session ends with the connection: this handler returns only once
	// both are over. Shutdown cancels r's context, which kills the process.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if tty && len(spec.Args) == 0 {
		spec.Args = []string{"/bin/sh"}
		if fi, err := s.mgr.Stat(ctx, name, "/bin/bash"); err == nil && fi.Type != agentv1.TypeDir {
			spec.Args = []string{"/bin/bash"}
		}
	}
	// Start before upgrading, so every failure to start is an HTTP status.
	sess, err := s.mgr.Attach(ctx, name, spec)
	if err != nil {
		fail(w, err, nil)
		return
	}
	c, err := websocket.Accept(w, r, nil) // it answered the client itself
	if err != nil {
		cancel()
		sess.Wait(nil, nil)
		s.log.Debug("websocket upgrade", "sandbox", name, "err", err)
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(wsReadLimit)

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		// Whatever ends the client's side — close frame, disconnect, bad
		// frame — ends the process too (after the exit frame it is moot).
		defer cancel()
		readWS(ctx, c, sess)
	})

	var stdout, stderr wsOutput
	if tty {
		stdout = wsOutput{ctx: ctx, c: c}
	} else {
		stdout = wsOutput{ctx: ctx, c: c, tag: wsStdout}
		stderr = wsOutput{ctx: ctx, c: c, tag: wsStderr}
	}
	st, err := sess.Wait(stdout, stderr)
	if err != nil {
		if ctx.Err() != nil {
			s.log.Debug("websocket session ended by the client", "sandbox", name, "err", err)
			return // the client is gone or closed: nobody to tell
		}
		s.log.Warn("websocket session", "sandbox", name, "err", err)
		writeWSJSON(ctx, c, wsError{Type: "error", Message: err.Error()})
		c.Close(websocket.StatusInternalError, "session failed")
		return
	}
	if err := writeWSJSON(ctx, c, wsExit{Type: "exit", ExitCode: st.Code, Signal: st.Signal, TimedOut: st.TimedOut}); err != nil {
		return
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// readWS feeds the client's messages to the session until the client's
// side ends.
func readWS(ctx context.Context, c *websocket.Conn, sess *agentv1.Session) {
	stdin := sess.Stdin()
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageBinary {
			// An error here means the process ended or stdin was closed:
			// the exit frame follows, or the client asked for it.
			stdin.Write(data)
			continue
		}
		if err := control(sess, data); err != nil {
			if writeWSJSON(ctx, c, wsError{Type: "error", Message: err.Error()}) != nil {
				return
			}
		}
	}
}

// control applies one control message to the session.
func control(sess *agentv1.Session, data []byte) error {
	var m wsControl
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("control message: invalid JSON: %v", err)
	}
	switch m.Type {
	case "resize":
		if m.Cols == 0 || m.Rows == 0 {
			return errors.New("resize: cols and rows must be 1..65535")
		}
		return sess.Resize(m.Rows, m.Cols)
	case "signal":
		sig, err := parseSignal(m.Signal)
		if err != nil {
			return err
		}
		return sess.Signal(sig)
	case "eof":
		return sess.Stdin().Close()
	}
	return fmt.Errorf("control message: unknown type %q (want resize, signal or eof)", m.Type)
}

// parseSignal reads "INT", "SIGINT", "int" or 2.
func parseSignal(raw json.RawMessage) (int, error) {
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %d: want 1..64", n)
		}
		return n, nil
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil || name == "" {
		return 0, errors.New(`signal: want a name ("INT") or a number`)
	}
	up := strings.ToUpper(name)
	if !strings.HasPrefix(up, "SIG") {
		up = "SIG" + up
	}
	if sig := unix.SignalNum(up); sig != 0 {
		return int(sig), nil
	}
	return 0, fmt.Errorf("signal %q: unknown", name)
}

// wsOutput writes each chunk of a process's output as one binary message,
// after its stream tag when it has one.
type wsOutput struct {
	ctx context.Context
	c   *websocket.Conn
	tag byte // 0: none (a PTY's single stream)
}

func (o wsOutput) Write(p []byte) (int, error) {
	msg := p
	if o.tag != 0 {
		msg = make([]byte, 1+len(p))
		msg[0] = o.tag
		copy(msg[1:], p)
	}
	if err := o.c.Write(o.ctx, websocket.MessageBinary, msg); err != nil {
		return 0, err
	}
	return len(p), nil
}

func writeWSJSON(ctx context.Context, c *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Write(ctx, websocket.MessageText, b)
}

// wsSpec reads a session's command and terminal from the query.
func wsSpec(q url.Values, tty bool) (agentv1.ExecSpec, error) {
	for k := range q {
		switch k {
		case "cmd", "env", "workdir":
		case "cols", "rows":
			if !tty {
				return agentv1.ExecSpec{}, badRequest("query parameter %q is for attach only", k)
			}
		default:
			return agentv1.ExecSpec{}, badRequest("unknown query parameter %q (want cmd, env, workdir, cols, rows)", k)
		}
	}
	spec := agentv1.ExecSpec{Args: q["cmd"], Dir: q.Get("workdir"), TTY: tty, Stdin: true}
	if len(spec.Args) == 0 && !tty {
		return spec, badRequest("command is required: ?cmd=PROGRAM&cmd=ARG…")
	}
	if len(spec.Args) > 0 && spec.Args[0] == "" {
		return spec, badRequest("command is empty")
	}
	if spec.Dir != "" && !strings.HasPrefix(spec.Dir, "/") {
		return spec, badRequest("workdir %q must be an absolute path", spec.Dir)
	}
	hasTerm := false
	for _, kv := range q["env"] {
		k, _, found := strings.Cut(kv, "=")
		if !found || k == "" || strings.ContainsRune(kv, 0) {
			return spec, badRequest("env %q: want KEY=VALUE", kv)
		}
		hasTerm = hasTerm || k == "TERM"
		spec.Env = append(spec.Env, kv)
	}
	if !tty {
		return spec, nil
	}
	if !hasTerm {
		spec.Env = append(spec.Env, "TERM=xterm-256color")
	}
	spec.Cols, spec.Rows = 80, 24
	for _, d := range []struct {
		key string
		v   *uint16
	}{{"cols", &spec.Cols}, {"rows", &spec.Rows}} {
		if v := q.Get(d.key); v != "" {
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil || n == 0 {
				return spec, badRequest("%s %q: want 1..65535", d.key, v)
			}
			*d.v = uint16(n)
		}
	}
	return spec, nil
}

// checkUpgrade returns why r is not a WebSocket handshake, or "".
func checkUpgrade(r *http.Request) string {
	if r.Method != http.MethodGet ||
		!headerHasToken(r.Header, "Connection", "upgrade") ||
		!headerHasToken(r.Header, "Upgrade", "websocket") {
		return "this route is a WebSocket: send GET with Connection: Upgrade and Upgrade: websocket"
	}
	return ""
}

// checkOrigin refuses a browser page of another origin (cross-site
// WebSocket hijacking), before anything starts; clients that are not
// browsers send no Origin.
func checkOrigin(r *http.Request) string {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || !strings.EqualFold(u.Host, r.Host) {
		return fmt.Sprintf("origin %q may not open a WebSocket on %s", origin, r.Host)
	}
	return ""
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
