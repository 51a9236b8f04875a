package v1

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Dialer opens a new byte stream to the agent.
type Dialer func(ctx context.Context) (net.Conn, error)

// Client talks to one agent. It multiplexes concurrent calls over HTTP/2
// connections it dials on demand; it is safe for concurrent use.
type Client struct {
	dial Dialer
	hc   *http.Client
	tr   *http.Transport

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// baseURL is what every request is addressed to; the Dialer decides where
// the bytes really go.
const baseURL = "http://agent"

// maxErrorBody bounds how much of an error or JSON response is read.
const maxErrorBody = 1 << 20

// maxJSONResponse bounds JSON answers (process and directory listings).
const maxJSONResponse = 64 << 20

// NewClient returns a client that reaches the agent through dial.
func NewClient(dial Dialer) *Client {
	c := &Client{dial: dial, conns: make(map[net.Conn]struct{})}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true) // prior-knowledge h2c, and nothing else
	c.tr = &http.Transport{
		Protocols: &p,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return c.dialTracked(ctx)
		},
		HTTP2: &http.HTTP2Config{
			// Past the agent's stream limit, wait rather than dial: some
			// transports (a serial port) carry exactly one connection.
			StrictMaxConcurrentRequests: true,
			// Notice a dead agent whose stream never reports EOF (a
			// virtio-serial port does not), without limiting long execs.
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     15 * time.Second,
		},
	}
	c.hc = &http.Client{Transport: c.tr}
	return c
}

func (c *Client) dialTracked(ctx context.Context) (net.Conn, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, errors.New("agent client closed")
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("dialing agent: %w", err)
	}
	tc := &trackedConn{Conn: conn, c: c}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		conn.Close()
		return nil, errors.New("agent client closed")
	}
	c.conns[tc] = struct{}{}
	return tc, nil
}

// trackedConn lets Close reach connections that still carry streams.
type trackedConn struct {
	net.Conn
	c    *Client
	once sync.Once
}

func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.c.mu.Lock()
		delete(t.c.conns, t)
		t.c.mu.Unlock()
	})
	return t.Conn.Close()
}

// Close releases the client's connections; calls in flight fail.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	conns := make([]net.Conn, 0, len(c.conns))
	for conn := range c.conns {
		conns = append(conns, conn)
	}
	c.mu.Unlock()
	c.tr.CloseIdleConnections()
	for _, conn := range conns {
		conn.Close()
	}
	return nil
}

// Version performs the version handshake; it fails if the protocol differs.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	var v VersionInfo
	if err := c.doJSON(ctx, http.MethodGet, PathVersion, nil, nil, &v); err != nil {
		return VersionInfo{}, err
	}
	if major(v.Protocol) != major(ProtocolVersion) {
		return v, Errorf(CodeFailedPrecondition,
			"agent speaks protocol %q, this client speaks %q: update the agent binary in the sandbox", v.Protocol, ProtocolVersion)
	}
	return v, nil
}

func major(v string) string {
	m, _, _ := strings.Cut(v, ".")
	return m
}

// Shutdown asks the agent to stop every process and exit. It returns once
// the agent accepted; the agent then stops its processes and exits.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.doJSON(ctx, http.MethodPost, PathShutdown, nil, nil, nil)
}

// do sends one request and returns a 2xx response; any other status becomes
// an *Error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := baseURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	return resp, nil
}

// doJSON sends in (if not nil) as JSON and decodes the answer into out (if
// not nil).
func (c *Client) doJSON(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(ctx, method, path, q, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return drain(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSONResponse)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
	}
	return nil
}

func drain(resp *http.Response) error {
	defer resp.Body.Close()
	_, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return err
}

// responseError turns a non-2xx answer into an *Error: the agent's JSON body
// when there is one, otherwise a code derived from the status.
func responseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e Error
	if json.Unmarshal(b, &e) == nil && e.Code != "" {
		return &e
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = resp.Status
	}
	return &Error{Code: CodeForStatus(resp.StatusCode), Message: "agent: " + msg}
}
