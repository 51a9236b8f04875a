package v1

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeAgent serves h with h2c on a unix socket and returns a client for it
// and a counter of dialed connections.
func fakeAgent(t *testing.T, h http.Handler) (*Client, *atomic.Int32) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &p}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	var dials atomic.Int32
	c := NewClient(func(ctx context.Context) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	})
	t.Cleanup(func() { c.Close() })
	return c, &dials
}

func versionHandler(proto string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "not h2", http.StatusHTTPVersionNotSupported)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"protocol":"`+proto+`","agent":"test","pid":1}`)
	}
}

func TestVersionHandshake(t *testing.T) {
	c, dials := fakeAgent(t, versionHandler(ProtocolVersion))
	v, err := c.Version(t.Context())
	if err != nil || v.Agent != "test" || v.PID != 1 {
		t.Fatal(v, err)
	}
	// Many concurrent calls share the one HTTP/2 connection.
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Version(t.Context()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := dials.Load(); n != 1 {
		t.Errorf("dialed %d connections, want 1", n)
	}

	for _, proto := range []string{"2", "0", ""} {
		c, _ := fakeAgent(t, versionHandler(proto))
		_, err := c.Version(t.Context())
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeFailedPrecondition || !strings.Contains(e.Message, "protocol") {
			t.Errorf("protocol %q: %v", proto, err)
		}
	}
	c2, _ := fakeAgent(t, versionHandler("1.7"))
	if _, err := c2.Version(t.Context()); err != nil {
		t.Errorf("minor version difference refused: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/files/stat", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"code":"not_found","message":"stat /x: no such file"}`)
	})
	mux.HandleFunc("GET /v1/files/list", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "plain text conflict", http.StatusConflict)
	})
	mux.HandleFunc("GET /v1/files", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	c, _ := fakeAgent(t, mux)
	_, err := c.Stat(t.Context(), "/x")
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeNotFound || e.Message != "stat /x: no such file" {
		t.Fatalf("json error: %#v", err)
	}
	_, err = c.List(t.Context(), "/x")
	if !errors.As(err, &e) || e.Code != CodeFailedPrecondition || !strings.Contains(e.Message, "plain text conflict") {
		t.Fatalf("text error: %#v", err)
	}
	_, err = c.ReadFile(t.Context(), "/x")
	if !errors.As(err, &e) || e.Code != CodeInternal {
		t.Fatalf("empty error: %#v", err)
	}
	for code := range map[string]bool{CodeInvalidArgument: true, CodeNotFound: true, CodeAlreadyExists: true, CodePermissionDenied: true, CodeUnavailable: true, CodeInternal: true, CodeFailedPrecondition: true} {
		back := CodeForStatus(StatusForCode(code))
		if back != code && !(code == CodeAlreadyExists && back == CodeFailedPrecondition) {
			t.Errorf("%s -> %d -> %s", code, StatusForCode(code), back)
		}
	}
}

// frameHandler answers an exec with the given frames.
func frameHandler(frames func(w io.Writer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := NewFrameReader(r.Body).ReadFrame()
		if err != nil || f.Type != FrameSpec {
			http.Error(w, `{"code":"invalid_argument","message":"no spec"}`, http.StatusBadRequest)
			return
		}
		frames(w)
	}
}

func TestExecFrames(t *testing.T) {
	c, _ := fakeAgent(t, frameHandler(func(w io.Writer) {
		WriteJSONFrame(w, FrameStarted, Started{PID: 42})
		WriteFrame(w, FrameStdout, []byte("out"))
		WriteFrame(w, FrameStderr, []byte("err"))
		WriteJSONFrame(w, FrameExit, ExitStatus{Code: 3})
	}))
	var out, errb bytes.Buffer
	st, err := c.Exec(t.Context(), ExecSpec{Args: []string{"x"}}, nil, &out, &errb)
	if err != nil || st.Code != 3 || out.String() != "out" || errb.String() != "err" {
		t.Fatal(st, err, out.String(), errb.String())
	}

	c, _ = fakeAgent(t, frameHandler(func(w io.Writer) {
		WriteJSONFrame(w, FrameError, Error{Code: CodeCommandNotFound, Message: "x: command not found"})
	}))
	_, err = c.Exec(t.Context(), ExecSpec{Args: []string{"x"}}, nil, nil, nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeCommandNotFound {
		t.Fatalf("start error: %v", err)
	}

	c, _ = fakeAgent(t, frameHandler(func(w io.Writer) {
		WriteJSONFrame(w, FrameStarted, Started{PID: 42})
		WriteFrame(w, FrameStdout, []byte("partial"))
	}))
	_, err = c.Exec(t.Context(), ExecSpec{Args: []string{"x"}}, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "without an exit status") {
		t.Fatalf("truncated stream: %v", err)
	}
}

func TestClientClose(t *testing.T) {
	c, _ := fakeAgent(t, versionHandler(ProtocolVersion))
	if _, err := c.Version(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Version(t.Context()); err == nil {
		t.Fatal("call after Close succeeded")
	}
}
