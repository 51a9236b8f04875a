//go:build linux

package netd

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// fakeNet stands in for a sandbox's stack.
type fakeNet struct {
	mu     sync.Mutex
	rules  []netpolicy.Rules
	closed bool
	done   chan struct{}
}

func (f *fakeNet) SetPolicy(r netpolicy.Rules) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
	return nil
}
func (f *fakeNet) Done() <-chan struct{} { return f.done }
func (f *fakeNet) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}
func (f *fakeNet) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// daemonUnderTest runs Serve on a temporary root with a factory that
// records what it made.
func daemonUnderTest(t *testing.T) (*Client, map[string]*fakeNet, *sync.Mutex, <-chan error) {
	root := t.TempDir()
	var mu sync.Mutex
	made := map[string]*fakeNet{}
	factory := func(tap *os.File, req Request) (Network, []sandbox.PortMapping, error) {
		tap.Close()
		if req.Sandbox == "refused" {
			return nil, nil, errors.New("no stack for you")
		}
		n := &fakeNet{done: make(chan struct{})}
		mu.Lock()
		made[req.Sandbox] = n
		mu.Unlock()
		return n, []sandbox.PortMapping{{HostPort: 40000, ContainerPort: 80, Protocol: "tcp"}}, nil
	}
	served := make(chan error, 1)
	go func() {
		served <- Serve(context.Background(), root, time.Minute, factory, slog.New(slog.DiscardHandler))
	}()
	c := NewClient(root, func() (string, error) { return "", errors.New("tests start no daemon") })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if running, _, _ := c.Status(t.Context()); running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon did not start listening")
		}
	}
	return c, made, &mu, served
}

// child starts a process to stand for a sandbox, and returns a pidfd of it.
func child(t *testing.T) (*exec.Cmd, *os.File) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	fd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	return cmd, os.NewFile(uintptr(fd), "pidfd")
}

func tapStandIn(t *testing.T) *os.File {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	return r
}

func TestDaemonServesAndForgetsSandboxes(t *testing.T) {
	c, made, mu, served := daemonUnderTest(t)
	ctx := t.Context()

	proc, pidfd := child(t)
	ports, err := c.Attach(ctx, Request{Sandbox: "box", Rules: netpolicy.Rules{AllowDomains: []string{"a.test"}}}, tapStandIn(t), pidfd)
	if err != nil || len(ports) != 1 || ports[0].HostPort != 40000 {
		t.Fatalf("attach: %v %v", ports, err)
	}
	if _, names, _ := c.Status(ctx); !slices.Equal(names, []string{"box"}) {
		t.Fatalf("status: %v", names)
	}
	if err := c.SetPolicy(ctx, "box", netpolicy.Rules{AllowlistOnly: true}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	box := made["box"]
	mu.Unlock()
	if len(box.rules) != 1 || !box.rules[0].AllowlistOnly {
		t.Fatalf("policy not passed on: %+v", box.rules)
	}
	if err := c.SetPolicy(ctx, "nobody", netpolicy.Rules{}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("policy for a sandbox not attached: %v", err)
	}
	if _, err := c.Attach(ctx, Request{Sandbox: "bad name!"}, tapStandIn(t), nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("a bad name: %v", err)
	}
	if _, err := c.Attach(ctx, Request{Sandbox: "refused"}, tapStandIn(t), nil); err == nil || !errors.Is(err, errdefs.ErrInternal) {
		t.Errorf("a stack that failed: %v", err)
	}
	if err := c.Stop(ctx); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("stop while a sandbox is attached: %v", err)
	}

	// The sandbox's process ends: the daemon forgets it by itself.
	proc.Process.Kill()
	for deadline := time.Now().Add(5 * time.Second); !box.isClosed(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the sandbox's exit did not detach it")
		}
	}
	if _, names, _ := c.Status(ctx); len(names) != 0 {
		t.Fatalf("status after the exit: %v", names)
	}

	// Detach frees at once; then the idle daemon stops when asked.
	if _, err := c.Attach(ctx, Request{Sandbox: "two"}, tapStandIn(t), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Detach(ctx, "two"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	two := made["two"]
	mu.Unlock()
	if !two.isClosed() {
		t.Error("detach did not close the sandbox's network")
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	if running, _, err := c.Status(ctx); running || err != nil {
		t.Errorf("status after stop: %v %v", running, err)
	}
	if err := c.Detach(ctx, "two"); err != nil {
		t.Errorf("detach with no daemon: %v", err)
	}
}

func TestClientWithoutServer(t *testing.T) {
	c := NewClient(t.TempDir(), func() (string, error) { return "", errdefs.ErrUnavailable })
	_, err := c.Attach(t.Context(), Request{Sandbox: "x"}, tapStandIn(t), tapStandIn(t))
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("attach with no server binary: %v", err)
	}
	if err := c.Probe(); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("probe with no server binary: %v", err)
	}
}
