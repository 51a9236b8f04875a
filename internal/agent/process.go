package agent

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
)

// logCap is how much of each output stream of a detached process is kept:
// the tail; the head is dropped and counted.
const logCap = 1 << 20

// maxExited bounds how many exited detached processes are remembered; the
// oldest are forgotten first, so an agent that is never told to delete them
// still stays small.
const maxExited = 128

// detached is a process started by POST /v1/processes.
type detached struct {
	id     string
	pid    int
	args   []string
	start  time.Time
	stdout *tailBuffer
	stderr *tailBuffer

	mu       sync.Mutex
	alive    bool
	exit     *v1.ExitStatus
	exitedAt time.Time
	timed    bool
}

func (d *detached) info() v1.ProcessInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	pi := v1.ProcessInfo{ID: d.id, PID: d.pid, Args: d.args, State: v1.StateRunning, StartedAt: d.start}
	if d.exit != nil {
		st := *d.exit
		at := d.exitedAt
		pi.State, pi.Exit, pi.ExitedAt = v1.StateExited, &st, &at
	}
	return pi
}

// signal signals the group while the main process is unreaped.
func (d *detached) signal(sig unix.Signal) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.alive {
		_ = unix.Kill(-d.pid, sig)
	}
}

// processTable holds the detached processes by id.
type processTable struct {
	mu    sync.Mutex
	byID  map[string]*detached
	order []string // ids in start order, for listing and eviction
}

func newProcessTable() *processTable {
	return &processTable{byID: make(map[string]*detached)}
}

func (t *processTable) add(d *detached) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byID[d.id] = d
	t.order = append(t.order, d.id)
}

func (t *processTable) get(id string) (*detached, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d, ok := t.byID[id]; ok {
		return d, nil
	}
	return nil, v1.Errorf(v1.CodeNotFound, "process %q not found", id)
}

func (t *processTable) list() []*detached {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*detached, 0, len(t.order))
	for _, id := range t.order {
		out = append(out, t.byID[id])
	}
	return out
}

func (t *processTable) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byID, id)
	for i, x := range t.order {
		if x == id {
			t.order = append(t.order[:i], t.order[i+1:]...)
			break
		}
	}
}

// evict forgets the oldest exited processes beyond maxExited.
func (t *processTable) evict() {
	var exited []string
	for _, d := range t.list() {
		if d.info().State == v1.StateExited {
			exited = append(exited, d.id)
		}
	}
	for i := 0; i < len(exited)-maxExited; i++ {
		t.remove(exited[i])
	}
}

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) handleStartProcess(w http.ResponseWriter, r *http.Request) {
	var spec v1.ExecSpec
	if err := readJSON(r, &spec); err != nil {
		writeError(w, err)
		return
	}
	d, err := s.startDetached(&spec)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, d.info())
}

// startDetached starts a process whose output goes to tail buffers.
// Detached processes have no stdin and no terminal.
func (s *Server) startDetached(spec *v1.ExecSpec) (*detached, error) {
	if spec.TTY || spec.Stdin {
		return nil, v1.Errorf(v1.CodeInvalidArgument, "detached processes take no stdin and no tty")
	}
	if err := checkExecSpec(spec); err != nil {
		return nil, err
	}
	checked := *spec
	c, err := s.prepare(&checked)
	if err != nil {
		return nil, err
	}
	in, err := devNull()
	if err != nil {
		return nil, v1.Errorf(v1.CodeInternal, "opening stdin: %v", err)
	}
	defer in.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, v1.Errorf(v1.CodeInternal, "creating pipe: %v", err)
	}
	defer outW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		return nil, v1.Errorf(v1.CodeInternal, "creating pipe: %v", err)
	}
	defer errW.Close()
	pid, exit, err := s.spawn(c, stdio{in.Fd(), outW.Fd(), errW.Fd()}, false)
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	d := &detached{
		id: newID(), pid: pid, args: checked.Args, start: time.Now(),
		stdout: newTailBuffer(logCap), stderr: newTailBuffer(logCap), alive: true,
	}
	s.addGroup(pid)
	s.procs.add(d)
	s.log.Debug("detached process started", "id", d.id, "pid", pid, "args", checked.Args)

	// Read until EOF: logs of a detached process include what its
	// background children write after it exited.
	go func() { _, _ = io.Copy(d.stdout, outR); outR.Close() }()
	go func() { _, _ = io.Copy(d.stderr, errR); errR.Close() }()

	var timer *time.Timer
	if checked.TimeoutMS > 0 {
		timer = time.AfterFunc(time.Duration(checked.TimeoutMS)*time.Millisecond, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.alive {
				d.timed = true
				_ = unix.Kill(-pid, unix.SIGKILL)
			}
		})
	}
	go func() {
		ei := <-exit
		if timer != nil {
			timer.Stop()
		}
		d.mu.Lock()
		st := exitStatus(ei.status)
		if d.timed {
			st = timedOutStatus()
		}
		d.alive, d.exit, d.exitedAt = false, &st, ei.at
		d.mu.Unlock()
		s.removeGroup(pid)
		s.procs.evict()
		s.log.Debug("detached process exited", "id", d.id, "pid", pid, "status", st)
	}()
	return d, nil
}

func (s *Server) handleListProcesses(w http.ResponseWriter, r *http.Request) {
	ds := s.procs.list()
	out := make([]v1.ProcessInfo, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.info())
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleProcess(w http.ResponseWriter, r *http.Request) {
	d, err := s.procs.get(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d.info())
}

// handleDeleteProcess forgets an exited process; a running one must be
// killed first.
func (s *Server) handleDeleteProcess(w http.ResponseWriter, r *http.Request) {
	d, err := s.procs.get(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if d.info().State != v1.StateExited {
		writeError(w, v1.Errorf(v1.CodeFailedPrecondition, "process %q is still running", d.id))
		return
	}
	s.procs.remove(d.id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	d, err := s.procs.get(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	var buf *tailBuffer
	switch stream := r.URL.Query().Get("stream"); stream {
	case "", "stdout":
		buf = d.stdout
	case "stderr":
		buf = d.stderr
	default:
		writeError(w, v1.Errorf(v1.CodeInvalidArgument, "unknown stream %q (want stdout or stderr)", stream))
		return
	}
	data, dropped := buf.Snapshot()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(v1.HeaderTruncated, strconv.FormatInt(dropped, 10))
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// handleKill signals a detached process's group (SIGTERM by default).
// Killing one that already exited is not an error: it answers its status.
func (s *Server) handleKill(w http.ResponseWriter, r *http.Request) {
	d, err := s.procs.get(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	var sg v1.Signal
	if err := readJSON(r, &sg); err != nil {
		writeError(w, err)
		return
	}
	if sg.Signal == 0 {
		sg.Signal = int(unix.SIGTERM)
	}
	if sg.Signal < 0 || sg.Signal > 64 {
		writeError(w, v1.Errorf(v1.CodeInvalidArgument, "invalid signal %d", sg.Signal))
		return
	}
	d.signal(unix.Signal(sg.Signal))
	writeJSON(w, http.StatusOK, d.info())
}
