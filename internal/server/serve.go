package server

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image/ingest"
	httpapi "github.com/agentkernel-go/agentkernel/internal/server/http"
	mcpserver "github.com/agentkernel-go/agentkernel/internal/server/mcp"
	"github.com/agentkernel-go/agentkernel/internal/service"
	"github.com/agentkernel-go/agentkernel/internal/setup"
)

// serveFlags are `agentkernel serve`'s flags.
type serveFlags struct {
	host, logLevel  string
	port            int
	apiKeys         stringList
	apiKeyFile      string
	tlsCert, tlsKey string
	tlsSelfSigned   bool
	config          string
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, error) {
	f := &serveFlags{}
	fs := flag.NewFlagSet("agentkernel serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.host, "host", "127.0.0.1", "address to listen on")
	fs.IntVar(&f.port, "port", 18888, "port to listen on (0: any free port)")
	fs.Var(&f.apiKeys, "api-key", "API key clients must send as `Authorization: Bearer KEY` (repeatable; also $AGENTKERNEL_API_KEY)")
	fs.StringVar(&f.apiKeyFile, "api-key-file", "", "file holding API keys, one a line")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM; with --tls-key)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "the certificate's private key (PEM)")
	fs.BoolVar(&f.tlsSelfSigned, "tls-self-signed", false, "serve HTTPS with a certificate made at start (ECDSA P-256, in memory); its SHA-256 fingerprint is logged for clients to pin")
	fs.StringVar(&f.config, "config", "", "read settings from this TOML file (host, port, api_key, api_keys, api_key_file, tls_cert, tls_key, tls_self_signed, log_level); flags win")
	fs.StringVar(&f.logLevel, "log-level", os.Getenv("AGENTKERNEL_LOG"), "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: %w", fs.Args(), errdefs.ErrInvalidArgument)
	}
	if f.config != "" {
		c, err := loadServeConfig(f.config)
		if err != nil {
			return nil, err
		}
		set := map[string]bool{}
		fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
		c.apply(f, set)
	}
	if f.port < 0 || f.port > 65535 {
		return nil, fmt.Errorf("--port %d out of range 0..65535: %w", f.port, errdefs.ErrInvalidArgument)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, fmt.Errorf("--tls-cert and --tls-key go together: %w", errdefs.ErrInvalidArgument)
	}
	if f.tlsSelfSigned && f.tlsCert != "" {
		return nil, fmt.Errorf("--tls-self-signed and --tls-cert/--tls-key exclude each other: %w", errdefs.ErrInvalidArgument)
	}
	return f, nil
}

// keys gathers the API keys from the flags, the key file and the environment.
func (f *serveFlags) keys(getenv func(string) string) ([]string, error) {
	keys := append([]string(nil), f.apiKeys...)
	if f.apiKeyFile != "" {
		raw, err := os.ReadFile(f.apiKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--api-key-file: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				keys = append(keys, line)
			}
		}
		if len(keys) == len(f.apiKeys) {
			return nil, fmt.Errorf("--api-key-file %s holds no key: %w", f.apiKeyFile, errdefs.ErrInvalidArgument)
		}
	}
	if k := strings.TrimSpace(getenv("AGENTKERNEL_API_KEY")); k != "" {
		keys = append(keys, k)
	}
	return keys, nil
}

// runServe is `agentkernel serve`.
func runServe(root string, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, root, args, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "agentkernel: serve: %v\n", err)
		return errdefs.ExitCode(err)
	}
	return 0
}

func serve(ctx context.Context, root string, args []string, getenv func(string) string, stderr io.Writer) error {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	level, err := setup.ParseLogLevel(f.logLevel)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	keys, err := f.keys(getenv)
	if err != nil {
		return err
	}
	if root == "" {
		if root, err = setup.DefaultRoot(getenv); err != nil {
			return err
		}
	}
	pool := &poolWorker{log: logger}
	mgr, agentErr, err := setup.Manager(ctx, setup.Config{Root: root, Getenv: getenv, Logger: logger, Fetcher: ingest.New, Background: pool.enqueue})
	if err != nil {
		return err
	}
	defer mgr.Close()
	if agentErr != nil {
		logger.Warn("sandboxes cannot start", "err", agentErr)
	}
	api, err := httpapi.New(mgr, httpapi.Options{APIKeys: keys, Logger: logger, Mounts: map[string]http.Handler{
		"/mcp": mcpserver.HTTPHandler(mgr, mcpserver.Options{Logger: logger, AgentErr: agentErr}),
	}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(f.host, strconv.Itoa(f.port)))
	if err != nil {
		return fmt.Errorf("listening: %v: %w", err, errdefs.ErrUnavailable)
	}
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	if f.tlsSelfSigned {
		cert, err := selfSignedCert(f.host, time.Now())
		if err != nil {
			ln.Close()
			return err
		}
		scheme = "https"
		ln = tls.NewListener(ln, &tls.Config{
			Certificates: []tls.Certificate{cert},
			NextProtos:   []string{"h2", "http/1.1"},
			MinVersion:   tls.VersionTLS12,
		})
		// Clients pin this (curl --pinnedpubkey pins the key instead).
		fmt.Fprintf(stderr, "agentkernel: self-signed TLS certificate for %s, valid until %s, SHA-256 fingerprint %s\n",
			strings.Join(append(cert.Leaf.DNSNames, ipStrings(cert.Leaf.IPAddresses)...), ","),
			cert.Leaf.NotAfter.UTC().Format(time.RFC3339), Fingerprint(cert.Certificate[0]))
	}
	pool.start(ctx, mgr)
	defer pool.wait()
	auth := "off"
	if len(keys) > 0 {
		auth = "on"
	}
	// Tests and scripts read this line for the bound address (--port 0).
	fmt.Fprintf(stderr, "agentkernel: listening on %s (%s, api key %s)\n", ln.Addr(), scheme, auth)
	return api.Serve(ctx, ln, f.tlsCert, f.tlsKey)
}

// poolWorker is the server's pool maintainer (the manager's Background):
// a long-lived server removes finished runs' sandboxes and refills the
// warm pool in-process, one batch at a time, instead of starting a
// process per run as the CLI does.
type poolWorker struct {
	log     *slog.Logger
	mu      sync.Mutex
	pending []string
	closed  bool
	wake    chan struct{}
	done    chan struct{}
}

func (p *poolWorker) enqueue(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.wake == nil {
		return errors.New("the server's pool maintainer is not running")
	}
	p.pending = append(p.pending, name)
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

func (p *poolWorker) start(ctx context.Context, mgr *service.Manager) {
	p.mu.Lock()
	p.wake, p.done = make(chan struct{}, 1), make(chan struct{})
	p.mu.Unlock()
	go func() {
		defer close(p.done)
		// Removal and refill run to completion even at shutdown: a
		// half-started pool sandbox is worse than a short wait.
		wctx := context.WithoutCancel(ctx)
		for {
			select {
			case <-p.wake:
			case <-ctx.Done():
				p.mu.Lock()
				p.closed = true
				p.mu.Unlock()
				p.drain(wctx, mgr, false)
				return
			}
			p.drain(wctx, mgr, true)
		}
	}()
}

// drain removes the queued sandboxes and, with refill, tops up the pool.
func (p *poolWorker) drain(ctx context.Context, mgr *service.Manager, refill bool) {
	p.mu.Lock()
	names := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, n := range names {
		if err := mgr.Remove(ctx, n); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			p.log.Warn("removing a finished run's sandbox", "name", n, "err", err)
		}
	}
	if refill {
		if err := mgr.MaintainPool(ctx); err != nil {
			p.log.Warn("maintaining the warm pool", "err", err)
		}
	}
}

// wait waits for the worker to finish after the server's context ended.
func (p *poolWorker) wait() {
	if p.done != nil {
		<-p.done
	}
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
