package agent

import (
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
)

// Output draining. After the main process exits, output keeps flowing until
// each stream reaches EOF (every writer closed it) — unless a background
// process still holds it open. Then a stream is cut when it has had no data
// for drainIdle, or after drainBudget of accumulated waiting for data, or
// after drainMaxBytes more bytes. Time spent blocked sending to a slow client
// does not count, so output already written by the exited process (at most
// a pipe buffer) is never lost to a slow reader.
const (
	drainIdle     = 200 * time.Millisecond
	drainBudget   = 2 * time.Second
	drainMaxBytes = 8 << 20
)

// outputChunk is the most read from a pipe per frame; with one buffer per
// stream it bounds what the agent holds for an exec.
const outputChunk = 32 << 10

// stdinQueue is how many stdin frames may wait for a process that is slow to
// read, so control frames behind them (signal, resize) still get through.
const stdinQueue = 4

const contentTypeFrames = "application/vnd.agentkernel.frames"

func (s *Server) handleExec(w http.ResponseWriter, r *http.Request) {
	fr := v1.NewFrameReader(r.Body)
	f, err := fr.ReadFrame()
	if err != nil {
		writeError(w, v1.Errorf(v1.CodeInvalidArgument, "reading spec frame: %v", err))
		return
	}
	if f.Type != v1.FrameSpec {
		writeError(w, v1.Errorf(v1.CodeInvalidArgument, "first frame is type %d, want a spec", f.Type))
		return
	}
	spec, err := parseExecSpec(f.Payload)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", contentTypeFrames)
	w.WriteHeader(http.StatusOK)
	out := &frameWriter{w: w, rc: http.NewResponseController(w)}

	p, err := s.startStreamed(&spec)
	if err != nil {
		s.log.Debug("exec failed to start", "args", spec.Args, "err", err)
		_ = out.writeJSON(v1.FrameError, asError(err))
		return
	}
	s.log.Debug("exec started", "pid", p.pid, "args", spec.Args, "tty", spec.TTY)
	status := p.run(r, fr, out, &spec)
	s.log.Debug("exec finished", "pid", p.pid, "status", status)
	_ = out.writeJSON(v1.FrameExit, status)
}

// streamed is a running exec: its process and the agent's ends of its stdio.
type streamed struct {
	s    *Server
	pid  int
	exit <-chan exitInfo

	stdin  *os.File // pipe write end, the pty master, or nil
	stdout *os.File // pipe read end or the pty master
	stderr *os.File // pipe read end, nil with a tty
	tty    bool

	mu    sync.Mutex
	alive bool // not yet reaped: its pid still names its process group
	timed bool // killed at the deadline
}

// startStreamed prepares the command and starts it on pipes or a pty.
func (s *Server) startStreamed(spec *v1.ExecSpec) (*streamed, error) {
	c, err := s.prepare(spec)
	if err != nil {
		return nil, err
	}
	p := &streamed{s: s, tty: spec.TTY}
	var child []*os.File // the child's ends, closed here once it started
	defer func() {
		for _, f := range child {
			f.Close()
		}
	}()
	fail := func(err error) (*streamed, error) {
		for _, f := range []*os.File{p.stdin, p.stdout, p.stderr} {
			if f != nil {
				f.Close()
			}
		}
		return nil, err
	}
	var fds stdio
	if spec.TTY {
		master, slave, err := openPTY(spec.Rows, spec.Cols)
		if err != nil {
			return nil, v1.Errorf(v1.CodeInternal, "allocating a pty: %v", err)
		}
		child = append(child, slave)
		if c.cred != nil {
			_ = slave.Chown(c.id.uid, c.id.gid) // as a login would; best effort
		}
		p.stdin, p.stdout = master, master
		fd := slave.Fd()
		fds = stdio{fd, fd, fd}
	} else {
		var in *os.File
		if spec.Stdin {
			r, w, err := os.Pipe()
			if err != nil {
				return fail(v1.Errorf(v1.CodeInternal, "creating stdin pipe: %v", err))
			}
			in, p.stdin = r, w
		} else if in, err = devNull(); err != nil {
			return fail(v1.Errorf(v1.CodeInternal, "opening stdin: %v", err))
		}
		child = append(child, in)
		outR, outW, err := os.Pipe()
		if err != nil {
			return fail(v1.Errorf(v1.CodeInternal, "creating stdout pipe: %v", err))
		}
		p.stdout = outR
		child = append(child, outW)
		errR, errW, err := os.Pipe()
		if err != nil {
			return fail(v1.Errorf(v1.CodeInternal, "creating stderr pipe: %v", err))
		}
		p.stderr = errR
		child = append(child, errW)
		// Fd puts the child's ends in blocking mode, as programs expect.
		fds = stdio{in.Fd(), outW.Fd(), errW.Fd()}
	}
	pid, exit, err := s.spawn(c, fds, spec.TTY)
	if err != nil {
		return fail(err)
	}
	p.pid, p.exit, p.alive = pid, exit, true
	return p, nil
}

// run streams the process until it exited and its output is drained, and
// returns its status. Ending the request (client gone or cancelled) kills
// the process group.
func (p *streamed) run(r *http.Request, fr *v1.FrameReader, out *frameWriter, spec *v1.ExecSpec) v1.ExitStatus {
	s := p.s
	s.addGroup(p.pid)
	defer s.removeGroup(p.pid)
	defer func() {
		for _, f := range []*os.File{p.stdin, p.stdout, p.stderr} {
			if f != nil {
				f.Close()
			}
		}
	}()

	if err := out.writeJSON(v1.FrameStarted, v1.Started{PID: p.pid}); err != nil {
		p.kill(unix.SIGKILL)
	}
	if spec.TimeoutMS > 0 {
		t := time.AfterFunc(time.Duration(spec.TimeoutMS)*time.Millisecond, p.timeout)
		defer t.Stop()
	}

	exited := make(chan struct{})
	var pumps sync.WaitGroup
	for _, o := range []struct {
		f *os.File
		t v1.FrameType
	}{{p.stdout, v1.FrameStdout}, {p.stderr, v1.FrameStderr}} {
		if o.f == nil {
			continue
		}
		pumps.Add(1)
		go func() {
			defer pumps.Done()
			pump(o.f, o.t, out, exited)
		}()
	}
	go p.readInput(fr)

	var ei exitInfo
	select {
	case ei = <-p.exit:
	case <-r.Context().Done():
		p.kill(unix.SIGKILL)
		ei = <-p.exit
	}
	p.mu.Lock()
	p.alive = false
	timed := p.timed
	p.mu.Unlock()

	close(exited)
	// Wake pumps blocked in Read so they switch to the drain rule.
	for _, f := range []*os.File{p.stdout, p.stderr} {
		if f != nil {
			_ = f.SetReadDeadline(time.Now().Add(drainIdle))
		}
	}
	pumps.Wait()
	if timed {
		return timedOutStatus()
	}
	return exitStatus(ei.status)
}

// kill signals the process group, but only while the main process is
// unreaped: after that its pid may be reused and must not be signalled.
func (p *streamed) kill(sig unix.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.alive {
		_ = unix.Kill(-p.pid, sig)
	}
}

func (p *streamed) timeout() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.alive {
		p.timed = true
		_ = unix.Kill(-p.pid, unix.SIGKILL)
	}
}

// readInput applies the client's frames in order until its stream ends.
// Stdin data goes through a small queue to a writer goroutine, so a process
// that does not read stdin only stalls this loop once the queue is full.
func (p *streamed) readInput(fr *v1.FrameReader) {
	q := make(chan []byte, stdinQueue)
	defer close(q)
	go p.writeStdin(q)
	closed := false
	closeStdin := func() {
		if !closed {
			closed = true
			q <- nil
		}
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			// The client ended its stream (or it broke): that is EOF on stdin.
			closeStdin()
			return
		}
		switch f.Type {
		case v1.FrameStdin:
			if !closed && p.stdin != nil && len(f.Payload) > 0 {
				q <- append([]byte(nil), f.Payload...)
			}
		case v1.FrameCloseStdin:
			closeStdin()
		case v1.FrameResize:
			var rs v1.Resize
			if f.DecodeJSON(&rs) == nil && p.tty && rs.Rows > 0 && rs.Cols > 0 {
				_ = setWinsize(p.stdout, rs.Rows, rs.Cols)
			}
		case v1.FrameSignal:
			var sg v1.Signal
			if f.DecodeJSON(&sg) == nil && sg.Signal > 0 && sg.Signal <= 64 {
				p.kill(unix.Signal(sg.Signal))
			}
		}
	}
}

// writeStdin feeds the process. nil means EOF: the pipe is closed; with a
// tty nothing is closed (the terminal is also the output) and later input is
// dropped — a client wanting EOF on a terminal sends ^D as data.
func (p *streamed) writeStdin(q <-chan []byte) {
	done := false
	for b := range q {
		if done || p.stdin == nil {
			continue
		}
		if b == nil {
			done = true
			if !p.tty {
				p.stdin.Close()
			}
			continue
		}
		if _, err := p.stdin.Write(b); err != nil {
			done = true // the process closed its stdin; drop the rest
		}
	}
}

// pump copies one output stream into frames until EOF, or until the drain
// rule ends it after the process exited.
func pump(f *os.File, t v1.FrameType, out *frameWriter, exited <-chan struct{}) {
	buf := make([]byte, frameHeader+outputChunk)
	buf[0] = byte(t)
	draining := false
	var waited time.Duration
	var drained int
	for {
		if !draining {
			select {
			case <-exited:
				draining = true
			default:
			}
		}
		var start time.Time
		if draining {
			left := drainBudget - waited
			if left <= 0 || drained > drainMaxBytes {
				return
			}
			_ = f.SetReadDeadline(time.Now().Add(min(drainIdle, left)))
			start = time.Now()
		}
		n, err := f.Read(buf[frameHeader:])
		if draining {
			waited += time.Since(start)
			drained += n
		}
		if n > 0 {
			binary.BigEndian.PutUint32(buf[1:frameHeader], uint32(n))
			if out.write(buf[:frameHeader+n]) != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Only set after exit: idle for drainIdle already, or
				// woken by the exit to start draining.
				if draining {
					return
				}
				select {
				case <-exited:
					return
				default:
				}
				continue
			}
			return // EOF; EIO from a pty whose last slave closed; closed
		}
	}
}

// frameHeader is the frame codec's header size: type byte and u32 length.
const frameHeader = 5

// frameWriter serialises frames onto the response and flushes each one, so
// output reaches the client as it happens. A flush blocks while HTTP/2 flow
// control says the client is behind; that backpressure reaches the process
// through its pipe, so the agent never buffers more than one chunk per stream.
type frameWriter struct {
	mu  sync.Mutex
	w   io.Writer
	rc  *http.ResponseController
	err error
}

// write sends one encoded frame.
func (fw *frameWriter) write(frame []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.err != nil {
		return fw.err
	}
	if _, err := fw.w.Write(frame); err != nil {
		fw.err = err
		return err
	}
	fw.err = fw.rc.Flush()
	return fw.err
}

func (fw *frameWriter) writeJSON(t v1.FrameType, v any) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.err != nil {
		return fw.err
	}
	if err := v1.WriteJSONFrame(fw.w, t, v); err != nil {
		fw.err = err
		return err
	}
	fw.err = fw.rc.Flush()
	return fw.err
}
