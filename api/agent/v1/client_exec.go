package v1

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Exec runs a process to completion, streaming its output as it happens.
// stdin may be nil (the process gets /dev/null). Cancelling ctx kills the
// process. A process that could not start returns an *Error (for example
// CodeCommandNotFound).
func (c *Client) Exec(ctx context.Context, spec ExecSpec, stdin io.Reader, stdout, stderr io.Writer) (ExitStatus, error) {
	spec.Stdin = stdin != nil
	s, err := c.StartExec(ctx, spec)
	if err != nil {
		return ExitStatus{}, err
	}
	if stdin != nil {
		// Not waited for: a stdin that never ends (a terminal) must not
		// keep Exec from returning once the process exited.
		go func() {
			w := s.Stdin()
			if _, err := io.Copy(w, stdin); err == nil {
				w.Close()
			}
		}()
	}
	return s.Wait(stdout, stderr)
}

// Session is a running streamed exec driven by the caller (interactive use).
type Session struct {
	ctx    context.Context
	pid    int
	body   io.ReadCloser
	fr     *FrameReader
	cancel context.CancelFunc

	mu     sync.Mutex // orders frames on the request stream
	pw     *io.PipeWriter
	closed bool // request stream ended (Wait returned)
	eof    bool // stdin closed

	waitOnce sync.Once
	status   ExitStatus
	err      error
}

// StartExec starts a process and returns once the agent reports it started
// (or failed to start). ctx governs the whole session: cancelling it kills
// the process.
func (c *Client) StartExec(ctx context.Context, spec ExecSpec) (*Session, error) {
	specFrame, err := encodeJSONFrame(FrameSpec, &spec)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	// The transport notices a cancelled context only between body reads, and
	// the body is a pipe that may stay quiet for a long time: break the pipe
	// so the stream is reset at once (the agent then kills the process).
	stop := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	cancel0 := cancel
	cancel = func() { stop(); cancel0() }
	// The spec leads the request body; later frames follow through the pipe.
	body := io.MultiReader(bytes.NewReader(specFrame), pr)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+PathExec, body)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Content-Type", "application/vnd.agentkernel.frames")
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		pw.Close()
		return nil, fmt.Errorf("exec: %w", err)
	}
	// Closing the response body waits for the request body to finish, so
	// end that first.
	fail := func(err error) (*Session, error) {
		pw.Close()
		cancel()
		resp.Body.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return fail(responseError(resp))
	}
	// Nor does it watch ctx while it waits for flow control to send stdin,
	// or while the caller reads output: closing the body resets the stream.
	stopBody := context.AfterFunc(ctx, func() { resp.Body.Close() })
	cancel1 := cancel
	cancel = func() { stopBody(); cancel1() }
	s := &Session{ctx: ctx, body: resp.Body, fr: NewFrameReader(resp.Body), cancel: cancel, pw: pw}
	f, err := s.fr.ReadFrame()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return fail(fmt.Errorf("exec: reading first frame: %w", err))
	}
	switch f.Type {
	case FrameStarted:
		var st Started
		if err := f.DecodeJSON(&st); err != nil {
			return fail(err)
		}
		s.pid = st.PID
		return s, nil
	case FrameError:
		return fail(frameError(f))
	}
	return fail(fmt.Errorf("exec: unexpected first frame type %d", f.Type))
}

// PID is the process's pid inside the sandbox.
func (s *Session) PID() int { return s.pid }

// Stdin returns the writer feeding the process's stdin; Close sends EOF.
// It only reaches the process if the spec set Stdin (or TTY).
func (s *Session) Stdin() io.WriteCloser { return sessionStdin{s} }

type sessionStdin struct{ s *Session }

func (w sessionStdin) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := w.s.send(FrameStdin, p, true); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w sessionStdin) Close() error {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eof || s.closed {
		return nil
	}
	s.eof = true
	return WriteFrame(s.pw, FrameCloseStdin, nil)
}

// send writes one frame on the request stream.
func (s *Session) send(t FrameType, payload []byte, stdin bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("exec session has ended")
	}
	if stdin && s.eof {
		return errors.New("stdin already closed")
	}
	return WriteFrame(s.pw, t, payload)
}

func (s *Session) sendJSON(t FrameType, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.send(t, b, false)
}

// Resize changes a TTY process's window size.
func (s *Session) Resize(rows, cols uint16) error {
	return s.sendJSON(FrameResize, Resize{Rows: rows, Cols: cols})
}

// Signal delivers sig to the process group.
func (s *Session) Signal(sig int) error {
	return s.sendJSON(FrameSignal, Signal{Signal: sig})
}

// Wait copies output to stdout/stderr until the process exits. Either may be
// nil to discard. A failing writer kills the process and returns its error.
// Later calls return the first result.
func (s *Session) Wait(stdout, stderr io.Writer) (ExitStatus, error) {
	s.waitOnce.Do(func() {
		s.status, s.err = s.wait(stdout, stderr)
		// Closing the stdin pipe first: a stdin write blocked on HTTP/2
		// flow control (a process that exited without reading) holds mu.
		s.pw.Close()
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel() // harmless after the last frame; unblocks Close below
		s.body.Close()
	})
	return s.status, s.err
}

func (s *Session) wait(stdout, stderr io.Writer) (ExitStatus, error) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	for {
		f, err := s.fr.ReadFrame()
		if err != nil {
			if ctxErr := s.ctx.Err(); ctxErr != nil {
				return ExitStatus{}, fmt.Errorf("exec: %w", ctxErr)
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return ExitStatus{}, fmt.Errorf("exec: stream ended without an exit status: %w", err)
		}
		switch f.Type {
		case FrameStdout:
			if _, err := stdout.Write(f.Payload); err != nil {
				return ExitStatus{}, fmt.Errorf("exec: writing stdout: %w", err)
			}
		case FrameStderr:
			if _, err := stderr.Write(f.Payload); err != nil {
				return ExitStatus{}, fmt.Errorf("exec: writing stderr: %w", err)
			}
		case FrameExit:
			var st ExitStatus
			if err := f.DecodeJSON(&st); err != nil {
				return ExitStatus{}, err
			}
			return st, nil
		case FrameError:
			return ExitStatus{}, frameError(f)
		default:
			return ExitStatus{}, fmt.Errorf("exec: unexpected frame type %d", f.Type)
		}
	}
}

func frameError(f Frame) error {
	var e Error
	if err := f.DecodeJSON(&e); err != nil {
		return err
	}
	if e.Code == "" {
		e.Code = CodeInternal
	}
	return &e
}

func encodeJSONFrame(t FrameType, v any) ([]byte, error) {
	var b bytes.Buffer
	if err := WriteJSONFrame(&b, t, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
