package netd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/flock"
	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// startTimeout bounds the wait for a daemon this client started.
const startTimeout = 10 * time.Second

// Client reaches the daemon of one data root, starting it when needed.
type Client struct {
	dir        string // <root>/net
	findServer func() (string, error)
}

// NewClient returns the client of the daemon of data root root;
// findServer finds the agentkernel-server binary that runs it.
func NewClient(root string, findServer func() (string, error)) *Client {
	return &Client{dir: filepath.Join(root, "net"), findServer: findServer}
}

// Probe says why sandboxes cannot have network access here, or nil.
func (c *Client) Probe() error {
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("no /dev/net/tun (load the tun module): %w", errdefs.ErrUnavailable)
	}
	// Unprivileged, the sandbox opens the device itself, as a user of
	// the host's.
	if os.Geteuid() != 0 && unix.Access("/dev/net/tun", unix.R_OK|unix.W_OK) != nil {
		return fmt.Errorf("/dev/net/tun is not open to this user (chmod 0666 /dev/net/tun, or run as root): %w", errdefs.ErrUnavailable)
	}
	if _, err := c.findServer(); err != nil {
		return fmt.Errorf("sandbox networking runs in agentkernel-server: %w", err)
	}
	return nil
}

// Attach hands the daemon a sandbox's TAP device and a pidfd of its
// process (nil: the daemon learns of its end by Detach only), with its
// rules, hosts and ports to publish, and returns the ports as bound. It
// closes tap and pidfd (the daemon has its own).
func (c *Client) Attach(ctx context.Context, req Request, tap, pidfd *os.File) ([]sandbox.PortMapping, error) {
	files := []*os.File{tap}
	if pidfd != nil {
		files = append(files, pidfd)
	}
	defer closeFiles(files)
	req.Op = "attach"
	resp, err := c.call(ctx, req, files, true)
	return resp.Ports, err
}

// SetPolicy gives an attached sandbox new rules, for its new connections.
func (c *Client) SetPolicy(ctx context.Context, name string, rules netpolicy.Rules) error {
	_, err := c.call(ctx, Request{Op: "policy", Sandbox: name, Rules: rules}, nil, false)
	return err
}

// Detach stops serving a sandbox's network and frees its ports. A daemon
// that is not running has nothing to detach.
func (c *Client) Detach(ctx context.Context, name string) error {
	_, err := c.call(ctx, Request{Op: "detach", Sandbox: name}, nil, false)
	if errors.Is(err, errNotRunning) {
		return nil
	}
	return err
}

// Status tells whether the daemon runs and which sandboxes it serves.
func (c *Client) Status(ctx context.Context) (running bool, sandboxes []string, err error) {
	resp, err := c.call(ctx, Request{Op: "status"}, nil, false)
	if errors.Is(err, errNotRunning) {
		return false, nil, nil
	}
	return err == nil, resp.Sandboxes, err
}

// Stop makes an idle daemon leave and waits for it to be gone (until ctx
// ends). It fails while sandboxes are attached; a daemon that does not run
// is stopped already.
func (c *Client) Stop(ctx context.Context) error {
	_, err := c.call(ctx, Request{Op: "exit"}, nil, false)
	if errors.Is(err, errNotRunning) {
		return nil
	}
	if err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(c.dir, lockName), os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	defer lock.Close()
	return flock.Wait(ctx, int(lock.Fd()), unix.LOCK_SH)
}

var errNotRunning = fmt.Errorf("the network daemon is not running: %w", errdefs.ErrUnavailable)

func (c *Client) call(ctx context.Context, req Request, files []*os.File, start bool) (Response, error) {
	conn, err := c.dial(ctx, start)
	if err != nil {
		return Response{}, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	raw, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := conn.WriteMsgUnix(append(raw, '\n'), oob, nil); err != nil {
		return Response{}, fmt.Errorf("network daemon: %w", err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return Response{}, ctx.Err()
		}
		return Response{}, fmt.Errorf("network daemon: %v: %w", err, errdefs.ErrUnavailable)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("network daemon: %w", err)
	}
	if resp.Error != "" {
		return resp, errdefs.FromProcess(resp.Error, resp.Kind)
	}
	return resp, nil
}

// dial connects to the daemon, starting it first if start is set and it
// does not run.
func (c *Client) dial(ctx context.Context, start bool) (*net.UnixConn, error) {
	addr := &net.UnixAddr{Name: filepath.Join(c.dir, socketName), Net: "unix"}
	conn, err := net.DialUnix("unix", nil, addr)
	if err == nil || !start {
		if err != nil {
			return nil, errNotRunning
		}
		return conn, nil
	}
	if err := c.spawn(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(startTimeout)
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		if conn, err = net.DialUnix("unix", nil, addr); err == nil {
			return conn, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the network daemon did not start (see %s): %w", filepath.Join(c.dir, logName), errdefs.ErrUnavailable)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// spawn starts a daemon, detached: it outlives this process. Two racing
// spawns are harmless: the daemon holds a lock, and the second leaves.
func (c *Client) spawn() error {
	server, err := c.findServer()
	if err != nil {
		return fmt.Errorf("sandbox networking runs in agentkernel-server: %w", err)
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(c.dir, logName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(server, "--root", filepath.Dir(c.dir), "net")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the network daemon: %w", errors.Join(err, errdefs.ErrUnavailable))
	}
	go cmd.Wait() //nolint:errcheck // reaped if it exits while we live; else init reaps it
	return nil
}
