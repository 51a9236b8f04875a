package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// runRequest is the body of /run, /run/stream. Fast (the warm pool) is
// the manager's own decision here, so it is accepted and echoed only.
type runRequest struct {
	Command []string `json:"command"`
	Image   string   `json:"image"`
	Profile string   `json:"profile"`
	Fast    *bool    `json:"fast"`
	networkFields
}

// runOutput is RunOutput of the SDK (/run, exec), with the exit code.
type runOutput struct {
	Output   string `json:"output"`
	ExitCode int    `json:"exit_code"`
}

// exitError is a command that ran and failed: 409, with its exit code and
// output in the envelope's data.
func exitError(st agentv1.ExitStatus) error {
	msg := fmt.Sprintf("command exited with code %d", st.Code)
	if st.TimedOut {
		msg += " (timed out)"
	}
	return &kindError{msg: msg, kind: errdefs.ErrFailedPrecondition}
}

// runRequest turns a body into the manager's request.
func (req *runRequest) toService(netErr error, stdout, stderr io.Writer) (service.RunRequest, error) {
	if len(req.Command) == 0 || req.Command[0] == "" {
		return service.RunRequest{}, badRequest("command is required")
	}
	o, err := req.options(sandbox.Options{Profile: req.Profile, Image: req.Image})
	if err != nil {
		return service.RunRequest{}, err
	}
	cfg, err := resolveConfig(netErr, o)
	if err != nil {
		return service.RunRequest{}, err
	}
	return service.RunRequest{
		Create: service.CreateRequest{Config: cfg},
		Exec:   service.ExecRequest{Spec: agentv1.ExecSpec{Args: req.Command}, Stdout: stdout, Stderr: stderr},
	}, nil
}

// run is POST /run: one command in an ephemeral sandbox.
func (s *Server) run(w http.ResponseWriter, r *http.Request, _ params) {
	var req runRequest
	if err := decode(w, r, &req); err != nil {
		fail(w, err, nil)
		return
	}
	var out outputBuffer
	sreq, err := req.toService(s.mgr.NetworkUnavailable(), &out, &out)
	if err != nil {
		fail(w, err, nil)
		return
	}
	_, st, err := s.mgr.Run(r.Context(), sreq)
	if err != nil {
		fail(w, err, nil)
		return
	}
	res := runOutput{Output: out.String(), ExitCode: st.Code}
	if st.Code != 0 {
		fail(w, exitError(st), res)
		return
	}
	ok(w, http.StatusOK, res)
}

// runStream is POST /run/stream: /run with its output as server-sent
// events (started, output…, done | error), each sent as it happens. A
// client that goes away cancels the command; the manager removes the
// sandbox either way.
func (s *Server) runStream(w http.ResponseWriter, r *http.Request, _ params) {
	var req runRequest
	if err := decode(w, r, &req); err != nil {
		fail(w, err, nil)
		return
	}
	ev := newEventStream(w)
	sreq, err := req.toService(s.mgr.NetworkUnavailable(), ev.output("stdout"), ev.output("stderr"))
	if err != nil {
		fail(w, err, nil)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ev.onError = cancel // the client is gone: stop the command
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ev.send("started", map[string]any{
		"command": req.Command, "fast": req.Fast == nil || *req.Fast,
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano),
	})
	// An image not in the store yet is pulled first, its layers reported
	// as progress events.
	sreq.Create.Config.Image = service.AutoImage(sreq.Create.Config.Image, req.Command)
	if err := s.mgr.EnsureImage(ctx, sreq.Create.Config.Image, &pullEvents{ev: ev, image: sreq.Create.Config.Image}); err != nil {
		ev.send("error", map[string]any{"message": err.Error(), "status": errorStatus(err)})
		return
	}
	_, st, err := s.mgr.Run(ctx, sreq)
	ev.flushOutput()
	if err != nil {
		ev.send("error", map[string]any{"message": err.Error(), "status": errorStatus(err)})
		return
	}
	ev.send("done", map[string]any{"exit_code": st.Code, "success": st.Code == 0, "timed_out": st.TimedOut})
}

// eventStream writes server-sent events, one flush per event.
type eventStream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	err     error
	onError func()
	outs    []*streamOutput
}

func newEventStream(w http.ResponseWriter) *eventStream {
	return &eventStream{w: w, rc: http.NewResponseController(w)}
}

func (e *eventStream) send(event string, data any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sendLocked(event, data)
}

func (e *eventStream) sendLocked(event string, data any) error {
	if e.err != nil {
		return e.err
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", event, raw); err != nil {
		e.fail(err)
		return err
	}
	if err := e.rc.Flush(); err != nil {
		e.fail(err)
		return err
	}
	return nil
}

func (e *eventStream) fail(err error) {
	e.err = err
	if e.onError != nil {
		e.onError()
	}
}

// output returns a writer that sends what it gets as output events of
// stream, holding back an incomplete UTF-8 sequence at a write's end.
func (e *eventStream) output(stream string) io.Writer {
	o := &streamOutput{e: e, stream: stream}
	e.outs = append(e.outs, o)
	return o
}

// flushOutput sends what the output writers still hold.
func (e *eventStream) flushOutput() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range e.outs {
		if len(o.pending) > 0 {
			e.sendLocked("output", map[string]string{"data": string(o.pending), "stream": o.stream})
			o.pending = nil
		}
	}
}

type streamOutput struct {
	e       *eventStream
	stream  string
	pending []byte // guarded by e.mu
}

func (o *streamOutput) Write(p []byte) (int, error) {
	o.e.mu.Lock()
	defer o.e.mu.Unlock()
	buf := append(o.pending, p...)
	cut := len(buf)
	// Hold back a trailing incomplete rune (at most 3 bytes).
	for i := 1; i <= 3 && i <= len(buf); i++ {
		b := buf[len(buf)-i]
		if b < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(b) {
			if !utf8.FullRune(buf[len(buf)-i:]) {
				cut = len(buf) - i
			}
			break
		}
	}
	o.pending = append([]byte(nil), buf[cut:]...)
	if cut == 0 {
		return len(p), nil
	}
	if err := o.e.sendLocked("output", map[string]string{"data": string(buf[:cut]), "stream": o.stream}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// pullEvents reports an image pull as progress events: each layer when it
// starts, at most every progressEvery while it downloads, and when done.
type pullEvents struct {
	ev    *eventStream
	image string
}

const progressEvery = 250 * time.Millisecond

// Layer implements image.Progress.
func (p *pullEvents) Layer(digest string, size int64) (io.Writer, func(error)) {
	var n int64
	var last time.Time
	report := func(extra map[string]any) {
		data := map[string]any{"stage": "pull", "image": p.image, "layer": digest, "downloaded": n, "total": size}
		for k, v := range extra {
			data[k] = v
		}
		p.ev.send("progress", data)
	}
	report(nil)
	w := writerFunc(func(b []byte) (int, error) {
		n += int64(len(b))
		if time.Since(last) >= progressEvery {
			last = time.Now()
			report(nil)
		}
		return len(b), nil
	})
	return w, func(err error) {
		if err != nil {
			report(map[string]any{"error": err.Error()})
			return
		}
		report(map[string]any{"done": true})
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
