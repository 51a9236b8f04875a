package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// Metrics are Prometheus metrics in a registry of the Server's own (several
// servers can live in one process), served at GET /metrics:
//
//	agentkernel_http_requests_total{method,route,code}
//	agentkernel_http_request_duration_seconds{method,route,code}
//	agentkernel_http_requests_in_flight
//	agentkernel_sandboxes{status}            sandboxes by status, at scrape
//	agentkernel_sandboxes_pooled             warm-pool spares, at scrape
//	agentkernel_exec_total{op,backend,outcome}
//	agentkernel_exec_duration_seconds{op,backend,outcome}
//	agentkernel_lifecycle_total{op,backend,outcome}
//	agentkernel_lifecycle_duration_seconds{op,backend,outcome}
//
// plus the Go runtime's and the process's standard metrics. route is the
// router's pattern ("/sandboxes/{name}/exec"), never the raw path, so a
// label's values stay few; a path no route matches is "unmatched".

const (
	// unmatchedRoute labels requests no route matches.
	unmatchedRoute = "unmatched"
	// unknownBackend labels an operation whose sandbox could not be found.
	unknownBackend = "unknown"
	// scrapeTimeout bounds listing the sandboxes for one scrape.
	scrapeTimeout = 5 * time.Second
)

// Outcomes of an exec or lifecycle operation.
const (
	outcomeOK          = "ok"           // done; a command exited 0
	outcomeExitNonZero = "exit_nonzero" // a command ran and failed (or timed out)
	outcomeError       = "error"        // agentkernel could not do it (bad input, no sandbox, backend failure)
	outcomeCanceled    = "canceled"     // the client went away first
)

// opKind sorts the instrumented routes into the two metric families.
type opKind int

const (
	opExec opKind = iota
	opLifecycle
)

type instrumentedOp struct {
	name string
	kind opKind
	// bySandbox: the backend is the named sandbox's; otherwise it is the
	// one a new sandbox gets (these routes cannot choose one).
	bySandbox bool
}

// instrumentedOps are the routes counted as exec and lifecycle
// operations, by method and pattern. batch_run counts the batch, not each
// of its commands.
var instrumentedOps = map[string]instrumentedOp{
	"POST /run":                     {"run", opExec, false},
	"POST /run/stream":              {"run_stream", opExec, false},
	"POST /batch/run":               {"batch_run", opExec, false},
	"POST /sandboxes/{name}/exec":   {"exec", opExec, true},
	"POST /sandboxes":               {"create", opLifecycle, false},
	"POST /sandboxes/{name}/start":  {"start", opLifecycle, true},
	"POST /sandboxes/{name}/stop":   {"stop", opLifecycle, true},
	"DELETE /sandboxes/{name}":      {"remove", opLifecycle, true},
	"POST /sandboxes/{name}/extend": {"extend_ttl", opLifecycle, true},
}

type metrics struct {
	reg      *prometheus.Registry
	handler  http.Handler
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight prometheus.Gauge
	ops      map[opKind]*prometheus.CounterVec
	opTime   map[opKind]*prometheus.HistogramVec

	mgr            *service.Manager
	backendOnce    sync.Once
	defaultBackend string
}

// requestBuckets reach down to the sub-millisecond exec over loopback.
var requestBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// opBuckets reach up to long commands.
var opBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

func newMetrics(mgr *service.Manager) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		mgr: mgr,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentkernel_http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "agentkernel_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by method, route pattern and status code.",
			Buckets: requestBuckets,
		}, []string{"method", "route", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agentkernel_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		ops: map[opKind]*prometheus.CounterVec{
			opExec: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "agentkernel_exec_total",
				Help: "Commands run through the API (op: exec, run, run_stream, batch_run), by backend and outcome.",
			}, []string{"op", "backend", "outcome"}),
			opLifecycle: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "agentkernel_lifecycle_total",
				Help: "Sandbox lifecycle operations through the API (op: create, start, stop, remove, extend_ttl), by backend and outcome.",
			}, []string{"op", "backend", "outcome"}),
		},
		opTime: map[opKind]*prometheus.HistogramVec{
			opExec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name:    "agentkernel_exec_duration_seconds",
				Help:    "Time to run a command through the API (run includes creating and removing its sandbox), by op, backend and outcome.",
				Buckets: opBuckets,
			}, []string{"op", "backend", "outcome"}),
			opLifecycle: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name:    "agentkernel_lifecycle_duration_seconds",
				Help:    "Time of a sandbox lifecycle operation through the API, by op, backend and outcome.",
				Buckets: opBuckets,
			}, []string{"op", "backend", "outcome"}),
		},
	}
	m.reg.MustRegister(
		m.requests, m.latency, m.inFlight,
		m.ops[opExec], m.ops[opLifecycle], m.opTime[opExec], m.opTime[opLifecycle],
		&sandboxCollector{mgr: mgr},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return m
}

// serveMetrics is GET /metrics, in Prometheus' text format.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ params) {
	s.metrics.handler.ServeHTTP(w, r)
}

// routeOf is the label of the route r goes to: a mount's prefix, a
// route's pattern or unmatchedRoute.
func (s *Server) routeOf(r *http.Request) string {
	for prefix := range s.opts.Mounts {
		if r.URL.Path == prefix || strings.HasPrefix(r.URL.Path, prefix+"/") {
			return prefix
		}
	}
	if rte, _, _ := s.router.match(r); rte != nil {
		return rte.pattern
	}
	return unmatchedRoute
}

// methodLabel keeps the method label to the methods HTTP defines.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// track starts counting a request; the returned writer records its status
// and done, deferred, observes it.
func (m *metrics) track(w http.ResponseWriter, r *http.Request, route string) (*recorder, func()) {
	rec := &recorder{ResponseWriter: w}
	start := time.Now()
	m.inFlight.Inc()
	return rec, func() {
		m.inFlight.Dec()
		code := strconv.Itoa(rec.statusOr(http.StatusOK))
		labels := prometheus.Labels{"method": methodLabel(r.Method), "route": route, "code": code}
		m.requests.With(labels).Inc()
		m.latency.With(labels).Observe(time.Since(start).Seconds())
	}
}

// instrumentOps wraps the handlers of instrumentedOps to count them by
// backend and outcome. It runs once the routes are registered.
func (s *Server) instrumentOps() {
	for i := range s.router.routes {
		rte := &s.router.routes[i]
		if op, found := instrumentedOps[rte.method+" "+rte.pattern]; found {
			rte.h = s.metrics.instrument(op, rte.h)
		}
	}
}

func (m *metrics) instrument(op instrumentedOp, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p params) {
		var backend string
		if op.bySandbox {
			backend = unknownBackend
			if in, err := m.mgr.Get(r.Context(), p["name"]); err == nil {
				backend = string(in.Backend)
			}
		} else {
			backend = m.newSandboxBackend(r.Context())
		}
		rec := &recorder{ResponseWriter: w, sniff: true}
		start := time.Now()
		h(rec, r, p)
		outcome := rec.outcome()
		if outcome == outcomeError && r.Context().Err() != nil {
			outcome = outcomeCanceled
		}
		m.ops[op.kind].WithLabelValues(op.name, backend, outcome).Inc()
		m.opTime[op.kind].WithLabelValues(op.name, backend, outcome).Observe(time.Since(start).Seconds())
	}
}

// newSandboxBackend is the backend the manager gives a sandbox created
// without naming one, looked up once.
func (m *metrics) newSandboxBackend(ctx context.Context) string {
	m.backendOnce.Do(func() {
		m.defaultBackend = unknownBackend
		if chosen, _ := m.mgr.Doctor(context.WithoutCancel(ctx)); chosen != "" {
			m.defaultBackend = string(chosen)
		}
	})
	return m.defaultBackend
}

// sandboxCollector reports the sandboxes by status, listed at each scrape.
type sandboxCollector struct {
	mgr *service.Manager
}

var (
	sandboxesDesc = prometheus.NewDesc("agentkernel_sandboxes",
		"Sandboxes by status (warm-pool spares not included).", []string{"status"}, nil)
	pooledDesc = prometheus.NewDesc("agentkernel_sandboxes_pooled",
		"Warm-pool spares: started sandboxes no run has claimed yet.", nil, nil)
)

func (c *sandboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sandboxesDesc
	ch <- pooledDesc
}

func (c *sandboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	list, err := c.mgr.List(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(sandboxesDesc, err)
		return
	}
	counts := map[sandbox.Status]int{sandbox.StatusCreated: 0, sandbox.StatusRunning: 0, sandbox.StatusStopped: 0}
	pooled := 0
	for _, in := range list {
		if in.Pooled {
			pooled++
			continue
		}
		counts[in.Status]++
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(sandboxesDesc, prometheus.GaugeValue, float64(n), string(st))
	}
	ch <- prometheus.MustNewConstMetric(pooledDesc, prometheus.GaugeValue, float64(pooled))
}

// recorder is a ResponseWriter that remembers the status and, when
// sniffing, enough of the body to tell a command's outcome: the start of
// the envelope (a failed command's carries data) and the last server-sent
// event (done or error).
type recorder struct {
	http.ResponseWriter
	status    int
	sniff     bool
	head      []byte
	lastEvent []byte
}

// failedCommandHead starts the envelope of a command that ran and failed:
// the error envelope with data (exit code and output), see fail.
var failedCommandHead = []byte(`{"success":false,"data":`)

const maxEventSniff = 4 << 10

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.sniff {
		if n := len(failedCommandHead) - len(rec.head); n > 0 {
			rec.head = append(rec.head, p[:min(n, len(p))]...)
		}
		// eventStream writes each event with one Write.
		if bytes.HasPrefix(p, []byte("event: ")) && len(p) <= maxEventSniff {
			rec.lastEvent = append(rec.lastEvent[:0], p...)
		}
	}
	return rec.ResponseWriter.Write(p)
}

// Flush and Hijack serve handlers that look for the interfaces instead of
// using http.ResponseController (which follows Unwrap).
func (rec *recorder) Flush() {
	http.NewResponseController(rec.ResponseWriter).Flush()
}

func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(rec.ResponseWriter).Hijack()
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

func (rec *recorder) statusOr(def int) int {
	if rec.status == 0 {
		return def
	}
	return rec.status
}

// outcome tells how the operation whose response rec saw went.
func (rec *recorder) outcome() string {
	status := rec.statusOr(http.StatusOK)
	switch {
	case status == http.StatusConflict && bytes.Equal(rec.head, failedCommandHead):
		return outcomeExitNonZero
	case status >= 300:
		return outcomeError
	case rec.lastEvent == nil:
		return outcomeOK
	}
	// A stream: its last event says.
	name, data, _ := bytes.Cut(bytes.TrimPrefix(rec.lastEvent, []byte("event: ")), []byte("\n"))
	if string(name) != "done" {
		return outcomeError
	}
	var done struct {
		Success bool `json:"success"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(bytes.TrimPrefix(data, []byte("data: "))), &done); err != nil {
		return outcomeError
	}
	if !done.Success {
		return outcomeExitNonZero
	}
	return outcomeOK
}
