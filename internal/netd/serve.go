package netd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// Network is one sandbox's network as the daemon runs it.
type Network interface {
	// SetPolicy replaces the sandbox's rules.
	SetPolicy(netpolicy.Rules) error
	// Done is closed when the sandbox's interface is gone (the sandbox
	// stopped): the daemon then forgets it.
	Done() <-chan struct{}
	// Close stops serving, and frees the published ports.
	Close() error
}

// Factory makes a sandbox's network from its TAP device (which it owns
// from then on, also on error) and the attach request, and returns the
// published ports as bound.
type Factory func(tap *os.File, req Request) (Network, []sandbox.PortMapping, error)

// daemon is the running daemon's state.
type daemon struct {
	factory Factory
	log     *slog.Logger

	mu   sync.Mutex
	nets map[string]Network
	idle time.Time // since when no sandbox is attached
	exit bool      // asked to leave
}

// Serve runs the daemon of data root root until ctx ends or no sandbox has
// been attached for linger. If another daemon already serves root it
// returns nil at once.
func Serve(ctx context.Context, root string, linger time.Duration, factory Factory, log *slog.Logger) error {
	dir := filepath.Join(root, "net")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil // another daemon serves this root
	}
	path := filepath.Join(dir, socketName)
	os.Remove(path) // a dead daemon's
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return err
	}
	ln.SetUnlinkOnClose(false)
	d := &daemon{factory: factory, log: log, nets: map[string]Network{}, idle: time.Now()}
	defer func() {
		os.Remove(path) // no new clients from here on
		ln.Close()
		d.closeAll()
	}()
	log.Info("network daemon listening", "socket", path)
	var handlers sync.WaitGroup
	defer handlers.Wait()
	for ctx.Err() == nil {
		if d.idleFor() >= linger {
			log.Info("network daemon idle, leaving")
			return nil
		}
		ln.SetDeadline(time.Now().Add(min(linger, time.Second)))
		c, err := ln.AcceptUnix()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		handlers.Go(func() {
			defer c.Close()
			d.handle(c)
		})
	}
	return nil
}

func (d *daemon) idleFor() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case len(d.nets) > 0:
		return 0
	case d.exit:
		return 1<<63 - 1
	}
	return time.Since(d.idle)
}

func (d *daemon) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, n := range d.nets {
		n.Close()
		delete(d.nets, name)
	}
}

// handle serves one request.
func (d *daemon) handle(c *net.UnixConn) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	req, files, err := readRequest(c)
	var resp Response
	if err == nil {
		resp, err = d.do(req, files)
	} else {
		closeFiles(files)
	}
	if err != nil {
		resp = Response{Error: err.Error(), Kind: errdefs.Kind(err).Error()}
	}
	raw, _ := json.Marshal(resp)
	c.Write(append(raw, '\n')) //nolint:errcheck // a client that left needs no answer
}

// do carries out a request; an attach's files are the TAP device and,
// optionally, a pidfd of the sandbox's process: its exit detaches the
// sandbox (its TAP device pins its network namespace, which so would
// outlive it). do owns the files.
func (d *daemon) do(req Request, files []*os.File) (Response, error) {
	if req.Op != "attach" || len(files) > maxFiles {
		closeFiles(files)
		files = nil
	}
	switch req.Op {
	case "status":
		d.mu.Lock()
		defer d.mu.Unlock()
		var names []string
		for n := range d.nets {
			names = append(names, n)
		}
		sort.Strings(names)
		return Response{Sandboxes: names}, nil
	case "exit":
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.nets) > 0 {
			return Response{}, fmt.Errorf("the network daemon serves %d sandboxes: %w", len(d.nets), errdefs.ErrFailedPrecondition)
		}
		d.exit = true
		return Response{}, nil
	case "attach", "policy", "detach":
		if err := sandbox.ValidateName(req.Sandbox); err != nil {
			closeFiles(files)
			return Response{}, err
		}
	default:
		return Response{}, fmt.Errorf("unknown request %q: %w", req.Op, errdefs.ErrInvalidArgument)
	}
	switch req.Op {
	case "attach":
		if len(files) == 0 {
			return Response{}, fmt.Errorf("attach needs the sandbox's interface (and at most a pidfd): %w", errdefs.ErrInvalidArgument)
		}
		tap := files[0]
		var pidfd *os.File
		if len(files) == 2 {
			pidfd = files[1]
		}
		d.detach(req.Sandbox) // a restarted sandbox: its old interface is gone
		n, ports, err := d.factory(tap, req)
		if err != nil {
			if pidfd != nil {
				pidfd.Close()
			}
			return Response{}, err
		}
		d.mu.Lock()
		d.nets[req.Sandbox] = n
		d.mu.Unlock()
		exited := processExit(pidfd)
		go func() {
			select {
			case <-n.Done():
			case <-exited:
			}
			d.forget(req.Sandbox, n)
		}()
		d.log.Info("sandbox attached", "sandbox", req.Sandbox, "ports", ports)
		return Response{Ports: ports}, nil
	case "policy":
		d.mu.Lock()
		n := d.nets[req.Sandbox]
		d.mu.Unlock()
		if n == nil {
			return Response{}, fmt.Errorf("sandbox %q has no network attached (is it running with network on?): %w", req.Sandbox, errdefs.ErrFailedPrecondition)
		}
		return Response{}, n.SetPolicy(req.Rules)
	default: // detach
		d.detach(req.Sandbox)
		return Response{}, nil
	}
}

func (d *daemon) detach(name string) {
	d.mu.Lock()
	n := d.nets[name]
	d.mu.Unlock()
	if n != nil {
		d.forget(name, n)
	}
}

// forget closes n and drops it, if it is still name's network.
func (d *daemon) forget(name string, n Network) {
	d.mu.Lock()
	if d.nets[name] == n {
		delete(d.nets, name)
		if len(d.nets) == 0 {
			d.idle = time.Now()
		}
	}
	d.mu.Unlock()
	n.Close()
	d.log.Info("sandbox detached", "sandbox", name)
}

// maxFiles is the most descriptors a request carries.
const maxFiles = 2

// readRequest reads a request and the descriptors attached to it, from a
// client of this daemon's user. The caller closes the files, also on error.
func readRequest(c *net.UnixConn) (Request, []*os.File, error) {
	buf := make([]byte, 64<<10) // longer requests are read on below
	oob := make([]byte, unix.CmsgSpace(maxFiles*4))
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	var files []*os.File
	if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
		for i := range msgs {
			if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				for _, fd := range fds {
					files = append(files, os.NewFile(uintptr(fd), "client"))
				}
			}
		}
	}
	if err != nil {
		return Request{}, files, err
	}
	if flags&unix.MSG_CTRUNC != 0 {
		return Request{}, files, fmt.Errorf("too many descriptors: %w", errdefs.ErrInvalidArgument)
	}
	if err := sameUser(c); err != nil {
		return Request{}, files, err
	}
	line := buf[:n]
	if len(line) == 0 || line[len(line)-1] != '\n' {
		rest, err := bufio.NewReader(c).ReadBytes('\n')
		if err != nil {
			return Request{}, files, fmt.Errorf("request: %w", err)
		}
		line = append(line, rest...)
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return Request{}, files, fmt.Errorf("request: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return req, files, nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// processExit returns a channel closed when the process of pidfd exits
// (never, for nil). It waits in the runtime's poller, not in a thread:
// a pidfd becomes readable when its process exits.
func processExit(pidfd *os.File) <-chan struct{} {
	ch := make(chan struct{})
	if pidfd == nil {
		return ch
	}
	go func() {
		defer close(ch)
		// A descriptor of our own, made non-blocking (Fd would make the
		// original blocking again), so that the runtime polls it.
		fd, err := unix.Dup(int(pidfd.Fd()))
		pidfd.Close()
		if err != nil || unix.SetNonblock(fd, true) != nil {
			return
		}
		f := os.NewFile(uintptr(fd), "pidfd")
		defer f.Close()
		rc, err := f.SyscallConn()
		if err != nil {
			return
		}
		waited := false
		rc.Read(func(uintptr) bool { //nolint:errcheck // any end means: stop watching
			if !waited {
				waited = true
				return false // wait for readability: the exit
			}
			return true
		})
	}()
	return ch
}

// sameUser refuses clients of other users: the directory's permissions
// already keep them out; this holds even if they are loosened.
func sameUser(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if credErr != nil {
		return credErr
	}
	if int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("uid %d may not use this network daemon: %w", cred.Uid, errdefs.ErrPermissionDenied)
	}
	return nil
}
