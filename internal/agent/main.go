package agent

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Main is agentkernel-agent's entry point; it returns the exit code.
//
// Exactly one of:
//
//	-listen-fd N   serve on an inherited, already-listening socket at fd N
//	-listen PATH   create a unix socket at PATH and serve on it
//	-conn-fd N     serve one already-connected stream (socket or character
//	               device such as a virtio-serial port); exit when it closes
//
// and optionally -subreaper (reap orphans when not PID 1), -grace,
// -idle-exit, -log-level.
// -version prints the version and exits.
func Main(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("agentkernel-agent", flag.ContinueOnError)
	fl.SetOutput(stderr)
	listenFD := fl.Int("listen-fd", -1, "serve on the inherited listening socket at this fd")
	listen := fl.String("listen", "", "create a unix socket at this path and serve on it")
	connFD := fl.Int("conn-fd", -1, "serve the one connected stream at this fd; exit when it closes")
	subreaper := fl.Bool("subreaper", false, "when not PID 1, become a child subreaper and reap orphans")
	level := fl.String("log-level", "info", "debug, info, warn or error")
	grace := fl.Duration("grace", 5*time.Second, "on shutdown, time between forwarding the signal and SIGKILL")
	idleExit := fl.Duration("idle-exit", 0, "exit once idle (no request, no process) for this long; 0: never")
	version := fl.Bool("version", false, "print the version and exit")
	// The stages of a microVM's serving agent (vmsandbox.go), started by
	// the guest's init: not for users.
	vmSandbox := fl.String(flagVMSandbox, "", "microVM guest only: confine the sandbox, then serve these ports")
	vmServe := fl.String(flagVMServe, "", "microVM guest only: serve these ports")
	vmStrict := fl.Bool("vm-strict", false, "microVM guest only: the restrictive profile's capabilities")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, "agentkernel-agent", buildVersion())
		return 0
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "agentkernel-agent: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	n := 0
	for _, set := range []bool{*listenFD >= 0, *listen != "", *connFD >= 0} {
		if set {
			n++
		}
	}
	switch {
	case *vmSandbox != "":
		err := confineSandbox(*vmSandbox, *grace, *vmStrict)
		log.Error("confining the microVM sandbox", "err", err)
		return 1
	case *vmServe != "":
		ignoreSignals()
		if err := serveSandbox(log, strings.Split(*vmServe, ","), *grace); err != nil {
			log.Error("serving", "err", err)
			return 1
		}
		return 0
	case n == 0 && fl.NArg() == 0 && os.Getpid() == 1:
		// A microVM's kernel starts its /init with no arguments.
		return vmMain(log, *grace)
	}
	if n != 1 || fl.NArg() != 0 {
		fmt.Fprintln(stderr, "agentkernel-agent: give exactly one of -listen-fd, -listen, -conn-fd")
		fl.Usage()
		return 2
	}

	isInit := os.Getpid() == 1
	if isInit {
		// Not dumpable: sandbox processes (even with ptrace allowed) can
		// neither trace the agent nor read its memory through /proc/1.
		if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
			log.Warn("making the agent undumpable", "err", err)
		}
		reserveThreads(8)
	}
	if *subreaper && !isInit {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			log.Error("becoming a child subreaper", "err", err)
			return 1
		}
	}
	ignoreSignals()

	s := New(Options{Logger: log, ReapAll: isInit || *subreaper, Init: isInit, Grace: *grace, IdleExit: *idleExit})
	ln, cleanup, err := listener(*listenFD, *listen, *connFD, s)
	if err != nil {
		log.Error("opening listener", "err", err)
		return 1
	}
	defer cleanup()

	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	defer signal.Stop(term)
	go func() {
		for sig := range term {
			log.Info("stopping on signal", "signal", sig)
			s.Stop(sig.(unix.Signal))
		}
	}()

	log.Info("agent serving", "version", s.version, "pid", os.Getpid(), "init", isInit, "addr", ln.Addr().String())
	if err := s.Serve(context.Background(), ln); err != nil {
		log.Error("serving", "err", err)
		return 1
	}
	log.Info("agent stopped")
	return 0
}

// ignoreSignals catches the signals that would otherwise end or stop the
// agent: as init a workload must not be able to kill it with SIGQUIT or
// SIGUSR1, and SIGPIPE on a closed log stream must not kill it either.
// Handled (not ignored) signals are reset to default in children, so
// workloads see normal dispositions.
func ignoreSignals() {
	sink := make(chan os.Signal, 8)
	signal.Notify(sink, unix.SIGPIPE, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU)
	go func() {
		for range sink {
		}
	}()
}

// reserveThreads makes the runtime create n OS threads now and keep them
// idle for reuse: a workload that exhausts the sandbox's pids limit (a fork
// bomb) must not leave the agent unable to get a thread when a goroutine
// blocks in a syscall, which would abort it and with it the sandbox.
func reserveThreads(n int) {
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			runtime.LockOSThread()
			wg.Done()
			<-release
			runtime.UnlockOSThread()
		}()
	}
	wg.Wait()
	close(release)
}

// listener builds the listener for the chosen mode. Inherited descriptors
// are closed once duplicated, so they do not leak into every child.
func listener(listenFD int, path string, connFD int, s *Server) (net.Listener, func(), error) {
	switch {
	case listenFD >= 0:
		f := os.NewFile(uintptr(listenFD), "listen-fd")
		if f == nil {
			return nil, nil, fmt.Errorf("fd %d is not open", listenFD)
		}
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("fd %d: %w", listenFD, err)
		}
		return ln, func() { ln.Close() }, nil
	case path != "":
		if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSocket != 0 {
			os.Remove(path) // stale socket of an earlier run
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, nil, err
		}
		if err := os.Chmod(path, 0o600); err != nil {
			ln.Close()
			return nil, nil, err
		}
		return ln, func() { ln.Close(); os.Remove(path) }, nil
	default:
		c, err := fdConn(connFD)
		if err != nil {
			return nil, nil, err
		}
		ln := newOneConnListener(c, func() { s.Stop(unix.SIGTERM) })
		return ln, func() { ln.Close() }, nil
	}
}

// fdConn wraps fd as a net.Conn: a socket through net.FileConn, anything
// else (a virtio-serial port is a character device) as a plain file.
func fdConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "conn-fd")
	if f == nil {
		return nil, fmt.Errorf("fd %d is not open", fd)
	}
	if c, err := net.FileConn(f); err == nil {
		f.Close()
		return c, nil
	}
	// Re-open through the poller so deadlines and Close unblock reads.
	newFD, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("fd %d: %w", fd, err)
	}
	if err := unix.SetNonblock(newFD, true); err != nil {
		unix.Close(newFD)
		return nil, fmt.Errorf("fd %d: %w", fd, err)
	}
	return &fileConn{File: os.NewFile(uintptr(newFD), "conn")}, nil
}
