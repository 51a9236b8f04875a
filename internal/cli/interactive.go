package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// ioMode is how a command's terminal and stdin are connected.
type ioMode struct {
	tty    bool      // the process runs on a PTY in the sandbox
	stdin  io.Reader // forwarded to the process; nil: it gets /dev/null
	termFd int       // the local terminal (raw mode, window size) when tty
}

// ioFor decides the I/O of a command. A PTY is allocated only when asked
// for and stdin is a terminal. Stdin is forwarded when it is not a terminal
// (a pipe or a file, which ends), when a PTY is used, or when interactive
// asks for it; an idle terminal is never read otherwise, so a command does
// not wait for input nobody types.
func (a *app) ioFor(wantTTY, interactive bool) ioMode {
	m := ioMode{termFd: -1}
	f, isFile := a.stdin.(*os.File)
	isTerm := isFile && term.IsTerminal(int(f.Fd()))
	switch {
	case wantTTY && isTerm:
		m.tty, m.termFd, m.stdin = true, int(f.Fd()), a.stdin
	case isTerm:
		if wantTTY {
			a.warnf("stdin is not a terminal: running without a TTY")
		}
		if interactive {
			m.stdin = a.stdin
		}
	default:
		if wantTTY {
			a.warnf("stdin is not a terminal: running without a TTY")
		}
		if a.stdin == nil {
			break
		}
		if isFile {
			if _, err := f.Stat(); err != nil {
				break // stdin is closed
			}
		}
		m.stdin = a.stdin
	}
	return m
}

// prepare fills in the spec's terminal fields for m.
func (m ioMode) prepare(spec *agentv1.ExecSpec, getenv func(string) string) {
	spec.TTY = m.tty
	spec.Stdin = m.stdin != nil
	if !m.tty {
		return
	}
	if w, h, err := term.GetSize(m.termFd); err == nil && w > 0 && h > 0 {
		spec.Rows, spec.Cols = uint16(h), uint16(w)
	}
	for _, kv := range spec.Env {
		if strings.HasPrefix(kv, "TERM=") {
			return
		}
	}
	t := getenv("TERM")
	if t == "" || t == "dumb" {
		t = "xterm-256color"
	}
	spec.Env = append(spec.Env, "TERM="+t)
}

// session starts spec in a running sandbox and drives it to the end: raw
// terminal and window-size changes for a PTY, stdin, and signals forwarded
// to the process (the third one kills it).
func (a *app) session(ctx context.Context, mgr *service.Manager, name string, spec agentv1.ExecSpec, m ioMode) (agentv1.ExitStatus, error) {
	m.prepare(&spec, a.getenv)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Catch signals before starting, so none is lost to the default action.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)

	sess, err := mgr.Attach(ctx, name, spec)
	if err != nil {
		return agentv1.ExitStatus{}, err
	}

	done := make(chan struct{})
	var killedBy os.Signal // set when the third signal cancelled the process
	var mu sync.Mutex
	var wg sync.WaitGroup
	defer func() {
		close(done)
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		forwarded := 0
		for {
			select {
			case sig := <-sigs:
				if forwarded++; forwarded >= 3 {
					mu.Lock()
					killedBy = sig
					mu.Unlock()
					cancel()
					continue
				}
				if s, ok := sig.(syscall.Signal); ok {
					_ = sess.Signal(int(s))
				}
			case <-done:
				return
			}
		}
	}()

	if m.tty {
		old, err := term.MakeRaw(m.termFd)
		if err == nil {
			defer term.Restore(m.termFd, old)
		}
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-winch:
					if w, h, err := term.GetSize(m.termFd); err == nil {
						_ = sess.Resize(uint16(h), uint16(w))
					}
				case <-done:
					return
				}
			}
		}()
	}
	if m.stdin != nil {
		// Not waited for: a read of our stdin cannot be interrupted, and
		// the process may well end without reading it all.
		go func() {
			in := sess.Stdin()
			_, _ = io.Copy(in, m.stdin)
			_ = in.Close()
		}()
	}
	st, err := sess.Wait(a.stdout, a.stderr)
	mu.Lock()
	defer mu.Unlock()
	if err != nil && killedBy != nil {
		return st, interrupted(killedBy)
	}
	return st, err
}

// commandExit turns how a sandboxed command ended into the CLI's result:
// its exit code passed through, or 124 with a message when it timed out.
func commandExit(st agentv1.ExitStatus, timeout time.Duration) error {
	if st.TimedOut {
		return &exitStatus{code: errdefs.ExitTimeout, msg: "command timed out after " + timeout.String()}
	}
	if st.Code != 0 {
		return &exitStatus{code: st.Code}
	}
	return nil
}
