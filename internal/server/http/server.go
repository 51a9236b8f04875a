package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// Defaults of Options.
const (
	DefaultMaxBody           = 16 << 20 // 16 MiB
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	// bodyReadTimeout bounds reading a request's body (slow senders).
	bodyReadTimeout = time.Minute
	// shutdownTimeout bounds waiting for cancelled requests to finish
	// cleaning up (a run removing its sandbox) at shutdown.
	shutdownTimeout = time.Minute
)

// Options configure a Server.
type Options struct {
	// APIKeys: when any is set, every route but openPaths needs
	// `Authorization: Bearer <key>` with one of them.
	APIKeys []string
	// MaxBody limits request bodies (default 16 MiB); larger gets 413.
	MaxBody           int64
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	Logger            *slog.Logger
	// Mounts serve other protocols at a path (and below it) behind the
	// same keys and body limit: the server mounts MCP at /mcp.
	Mounts map[string]http.Handler
}

// Server is the HTTP API over a manager.
type Server struct {
	mgr     *service.Manager
	opts    Options
	log     *slog.Logger
	keys    [][sha256.Size]byte
	router  router
	metrics *metrics
}

// New returns the API over mgr.
func New(mgr *service.Manager, opts Options) (*Server, error) {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	s := &Server{mgr: mgr, opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, k := range opts.APIKeys {
		if strings.TrimSpace(k) == "" || k != strings.TrimSpace(k) {
			return nil, fmt.Errorf("API key: empty or surrounded by spaces: %w", errdefs.ErrInvalidArgument)
		}
		s.keys = append(s.keys, sha256.Sum256([]byte(k)))
	}
	s.metrics = newMetrics(mgr)
	s.routes()
	s.instrumentOps()
	return s, nil
}

// ServeHTTP authenticates, limits the body and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w, done := s.metrics.track(w, r, s.routeOf(r))
	defer done()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
			fail(w, fmt.Errorf("internal error: %w", errdefs.ErrInternal), nil)
		}
	}()
	if !(openPaths[r.URL.Path] && (r.Method == http.MethodGet || r.Method == http.MethodHead)) {
		if msg := s.checkAuth(r); msg != "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="agentkernel"`)
			writeJSON(w, http.StatusUnauthorized, envelope{Error: msg})
			return
		}
	}
	if r.ContentLength > s.opts.MaxBody {
		fail(w, fmt.Errorf("%w: %d bytes, the limit is %d", errTooLarge, r.ContentLength, s.opts.MaxBody), nil)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
	r = r.WithContext(service.WithVia(r.Context(), "api"))
	for prefix, h := range s.opts.Mounts {
		if r.URL.Path == prefix || strings.HasPrefix(r.URL.Path, prefix+"/") {
			h.ServeHTTP(w, r)
			return
		}
	}
	s.router.ServeHTTP(w, r)
}

// openPaths need no API key: health checks, metrics scrapers and API
// browsers have none.
var openPaths = map[string]bool{"/health": true, "/metrics": true, "/openapi.json": true}

// checkAuth returns why r is not authorised, or "".
func (s *Server) checkAuth(r *http.Request) string {
	if len(s.keys) == 0 {
		return ""
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return "Missing Authorization header"
	}
	scheme, token, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "Invalid authorization format. Use: Bearer <api_key>"
	}
	// Hashing first makes the comparison constant-time in the key's length too.
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for _, k := range s.keys {
		match |= subtle.ConstantTimeCompare(sum[:], k[:])
	}
	if match != 1 {
		return "Invalid API key"
	}
	return ""
}

// Serve serves s on ln until ctx ends, then shuts down: it stops
// accepting, cancels the requests in flight (a run's sandbox is removed, a
// streamed command killed) and waits for them to finish. tlsCert and tlsKey
// serve HTTPS when both are set.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsCert, tlsKey string) error {
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() {
		if tlsCert != "" || tlsKey != "" {
			errc <- srv.ServeTLS(ln, tlsCert, tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down: cancelling requests in flight")
	var wg sync.WaitGroup
	var shutErr error
	wg.Go(func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		shutErr = srv.Shutdown(sctx)
	})
	cancelRequests()
	wg.Wait()
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return shutErr
}
