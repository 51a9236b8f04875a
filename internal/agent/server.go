package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
)

// Options configure a Server.
type Options struct {
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
	// EtcDir holds the passwd and group files users are resolved against
	// ("/etc" if empty).
	EtcDir string
	// ReapAll makes the reaper collect every child with wait4(-1), orphans
	// included. Set it when the agent is PID 1 or a child subreaper; leave it
	// unset when other code in the process waits for its own children.
	ReapAll bool
	// Init says the agent is PID 1 of its pid namespace: shutdown then
	// signals every process in the namespace (kill(-1)), not only the
	// process groups it started.
	Init bool
	// Grace is how long shutdown waits after the first signal before
	// SIGKILL (5s if zero).
	Grace time.Duration
	// SyncOnExit writes every filesystem's dirty data to disk whenever a
	// child exits, before its exit is reported.
	SyncOnExit bool
	// IdleExit shuts the agent down (and so, as init, the sandbox) once no
	// request has been handled and no process has run for this long; a
	// sandbox nobody uses then frees its host resources without a daemon
	// watching it. Zero disables it.
	IdleExit time.Duration
}

func syncIf(on bool) func() {
	if !on {
		return nil
	}
	return unix.Sync
}

// maxJSONBody bounds JSON request bodies; file bodies are unbounded streams.
const maxJSONBody = 1 << 20

// Server is the agent: an http.Handler for the v1 routes plus the state
// behind them (reaper, detached processes). Create it with New, run it with
// Serve.
type Server struct {
	log     *slog.Logger
	etcDir  string
	init    bool
	grace   time.Duration
	version string
	ownProc bool // /proc is this pid namespace's (see procIsOurs)

	reaper *reaper
	mux    *http.ServeMux
	procs  *processTable

	mu     sync.Mutex
	groups map[int]struct{} // process groups of started, unreaped processes

	active     atomic.Int64 // requests being handled
	lastActive atomic.Int64 // unix nanoseconds of the last request's end
	idleExit   time.Duration

	stopOnce sync.Once
	stopSig  unix.Signal
	stopping chan struct{} // closed when shutdown was asked for
}

// New returns a Server and starts its reaper.
func New(opts Options) *Server {
	s := &Server{
		log:      opts.Logger,
		etcDir:   opts.EtcDir,
		init:     opts.Init,
		grace:    opts.Grace,
		idleExit: opts.IdleExit,
		version:  buildVersion(),
		ownProc:  procIsOurs(),
		reaper:   newReaper(opts.ReapAll, syncIf(opts.SyncOnExit)),
		groups:   make(map[int]struct{}),
		stopping: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.etcDir == "" {
		s.etcDir = "/etc"
	}
	if s.grace <= 0 {
		s.grace = 5 * time.Second
	}
	s.procs = newProcessTable()
	s.lastActive.Store(time.Now().UnixNano())
	s.routes()
	return s
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET "+v1.PathVersion, s.handleVersion)
	m.HandleFunc("POST "+v1.PathExec, s.handleExec)
	m.HandleFunc("POST "+v1.PathProcesses, s.handleStartProcess)
	m.HandleFunc("GET "+v1.PathProcesses, s.handleListProcesses)
	m.HandleFunc("GET "+v1.PathProcess, s.handleProcess)
	m.HandleFunc("DELETE "+v1.PathProcess, s.handleDeleteProcess)
	m.HandleFunc("GET "+v1.PathLogs, s.handleLogs)
	m.HandleFunc("POST "+v1.PathKill, s.handleKill)
	m.HandleFunc("GET "+v1.PathFiles, s.handleReadFile)
	m.HandleFunc("PUT "+v1.PathFiles, s.handleWriteFile)
	m.HandleFunc("DELETE "+v1.PathFiles, s.handleRemove)
	m.HandleFunc("GET "+v1.PathStat, s.handleStat)
	m.HandleFunc("GET "+v1.PathList, s.handleList)
	m.HandleFunc("POST "+v1.PathMkdir, s.handleMkdir)
	m.HandleFunc("GET "+v1.PathArchive, s.handleArchive)
	m.HandleFunc("POST "+v1.PathShutdown, s.handleShutdown)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, v1.Errorf(v1.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	s.mux = m
}

// ServeHTTP serves the v1 routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.active.Add(1)
	defer func() {
		s.lastActive.Store(time.Now().UnixNano())
		s.active.Add(-1)
	}()
	s.mux.ServeHTTP(w, r)
}

// watchIdle stops the server once it has been idle for s.idleExit: no
// request in flight or for that long, and no process running.
func (s *Server) watchIdle() {
	tick := time.NewTicker(max(s.idleExit/10, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.stopping:
			return
		case <-tick.C:
		}
		s.reaper.poke()
		idleFor := time.Since(time.Unix(0, s.lastActive.Load()))
		if s.active.Load() == 0 && s.reaper.idle() && idleFor >= s.idleExit {
			s.log.Info("stopping: idle", "idle_exit", s.idleExit)
			s.Stop(unix.SIGTERM)
			return
		}
	}
}

// NewHTTPServer returns an http.Server for h speaking only HTTP/2 with prior
// knowledge (h2c), as the protocol requires.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         &p,
		ReadHeaderTimeout: 30 * time.Second,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: 1000,
			// Request data a handler has not read yet holds connection
			// window too: with the connection window 32 times a stream's,
			// one process that does not read its stdin cannot stall the
			// uploads and stdin of every other stream.
			MaxReceiveBufferPerStream:     512 << 10,
			MaxReceiveBufferPerConnection: 16 << 20,
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// Serve serves ln until Stop is called or ctx ends (treated as SIGTERM),
// then stops every process (see Stop) and the HTTP server, and returns.
// A Server serves once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := NewHTTPServer(s, s.log)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if s.idleExit > 0 {
		go s.watchIdle()
	}
	var serveErr error
	stopRequested := false
	select {
	case <-s.stopping:
	case <-ctx.Done():
		s.Stop(unix.SIGTERM)
	case serveErr = <-errc:
		// A stop requested just before (the -conn-fd stream closing) is
		// not a listener failure.
		select {
		case <-s.stopping:
			stopRequested = true
		default:
		}
		s.Stop(unix.SIGTERM)
	}
	s.terminateAll()
	// Let handlers finish (execs send their exit frames), then give the
	// HTTP/2 layer a moment to flush them. Shutdown alone would wait out
	// HTTP/2's one-second GOAWAY timer for idle client connections.
	s.waitHandlers(3 * time.Second)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 250*time.Millisecond)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	s.reaper.close()
	if stopRequested || errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// Stop asks Serve to shut down, forwarding sig to every process first.
// Later calls do nothing.
func (s *Server) Stop(sig unix.Signal) {
	s.stopOnce.Do(func() {
		s.stopSig = sig
		close(s.stopping)
	})
}

// terminateAll sends the stop signal to every process, waits up to the grace
// period for them to be gone, then SIGKILLs what is left and waits briefly.
// As init, "every process" is the whole pid namespace (kill(-1) skips the
// caller); otherwise it is the process groups this agent started — never
// kill(-1), which outside a namespace would hit the host.
func (s *Server) terminateAll() {
	s.signalAll(s.stopSig)
	if s.waitIdle(s.grace) {
		return
	}
	s.log.Warn("processes still running after grace period; killing", "grace", s.grace)
	s.signalAll(unix.SIGKILL)
	s.waitIdle(2 * time.Second)
}

func (s *Server) signalAll(sig unix.Signal) {
	if s.init {
		_ = unix.Kill(-1, sig)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for pgid := range s.groups {
		_ = unix.Kill(-pgid, sig)
	}
}

// waitIdle polls until no process is left or d passed.
func (s *Server) waitIdle(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		s.reaper.poke()
		if s.reaper.idle() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHandlers polls until no request is being handled or d passed.
func (s *Server) waitHandlers(d time.Duration) {
	deadline := time.Now().Add(d)
	for s.active.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Server) addGroup(pgid int) {
	s.mu.Lock()
	s.groups[pgid] = struct{}{}
	s.mu.Unlock()
}

func (s *Server) removeGroup(pgid int) {
	s.mu.Lock()
	delete(s.groups, pgid)
	s.mu.Unlock()
}

func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, v1.VersionInfo{Protocol: v1.ProtocolVersion, Agent: s.version, PID: os.Getpid()})
}

func (s *Server) handleShutdown(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct{}{})
	_ = http.NewResponseController(w).Flush()
	s.log.Info("shutdown requested by the host")
	s.Stop(unix.SIGTERM)
}

// buildVersion names this build from the module and VCS stamps.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, st := range bi.Settings {
		if st.Key == "vcs.revision" && len(st.Value) >= 12 {
			v += "+" + st.Value[:12]
		}
	}
	return v
}

// asError turns any error into the protocol's *Error.
func asError(err error) *v1.Error {
	var e *v1.Error
	if errors.As(err, &e) {
		return e
	}
	return &v1.Error{Code: v1.CodeInternal, Message: err.Error()}
}

func writeError(w http.ResponseWriter, err error) {
	e := asError(err)
	writeJSON(w, v1.StatusForCode(e.Code), e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readJSON decodes a bounded JSON request body; an empty body leaves v as is.
func readJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return v1.Errorf(v1.CodeInvalidArgument, "reading request: %v", err)
	}
	if len(b) > maxJSONBody {
		return v1.Errorf(v1.CodeInvalidArgument, "request body larger than %d bytes", maxJSONBody)
	}
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return v1.Errorf(v1.CodeInvalidArgument, "decoding request: %v", err)
	}
	return nil
}
