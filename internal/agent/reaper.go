package agent

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// reaper is the only code in the agent that waits for children. Children are
// started through reaper.start, never with exec.Cmd, because a global
// wait4(-1) would steal the status exec.Cmd.Wait expects.
//
// In "all" mode (PID 1 or a child subreaper) it reaps every child, including
// orphans reparented to the agent, with wait4(-1). Otherwise — the agent run
// in-process by tests, or as an ordinary child — it waits only for the pids
// it started, so it cannot steal the children of other code in the same
// process (os/exec in a test binary).
type reaper struct {
	all bool
	// beforeExit, if set, runs between reaping a child and reporting its
	// exit (a microVM's agent writes the guest's dirty pages to disk, so a
	// command's files outlive a crash of the VM once it has returned).
	beforeExit func()

	mu      sync.Mutex
	waiting map[int]chan exitInfo // registered pid -> its status, delivered once
	// childless is true once wait4(-1) reported ECHILD (all mode only).
	childless bool

	sigc chan os.Signal
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// exitInfo is a reaped child's status and when it was seen.
type exitInfo struct {
	status unix.WaitStatus
	at     time.Time
}

func newReaper(all bool, beforeExit func()) *reaper {
	r := &reaper{
		all:        all,
		beforeExit: beforeExit,
		waiting:    make(map[int]chan exitInfo),
		sigc:       make(chan os.Signal, 1),
		kick:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	signal.Notify(r.sigc, unix.SIGCHLD)
	go r.run()
	return r
}

// start runs fork and registers the pid it returns. The lock is held across
// both, so a child that exits at once cannot be reaped before it is
// registered: the reaper blocks on the lock with the status in hand and then
// finds the pid in the table. Statuses of pids nobody registered are orphans
// and are dropped.
func (r *reaper) start(fork func() (int, error)) (int, <-chan exitInfo, error) {
	r.mu.Lock()
	pid, err := fork()
	if err != nil {
		r.mu.Unlock()
		return 0, nil, err
	}
	ch := make(chan exitInfo, 1)
	r.waiting[pid] = ch
	r.childless = false
	r.mu.Unlock()
	r.poke()
	return pid, ch, nil
}

func (r *reaper) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// idle reports whether nothing the agent is responsible for is left: in all
// mode no child at all, otherwise no registered pid.
func (r *reaper) idle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.all {
		return r.childless && len(r.waiting) == 0
	}
	return len(r.waiting) == 0
}

func (r *reaper) close() {
	signal.Stop(r.sigc)
	close(r.stop)
	<-r.done
}

func (r *reaper) run() {
	defer close(r.done)
	// A slow backstop: SIGCHLD is never lost while the channel is drained,
	// but a periodic pass costs nothing and guards against surprises.
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		r.reap()
		select {
		case <-r.sigc:
		case <-r.kick:
		case <-tick.C:
		case <-r.stop:
			return
		}
	}
}

func (r *reaper) reap() {
	if r.all {
		r.reapAll()
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for pid, ch := range r.waiting {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG|unix.WALL, nil)
		if got == pid {
			r.exited()
			ch <- exitInfo{status: ws, at: time.Now()}
			delete(r.waiting, pid)
		} else if errors.Is(err, unix.ECHILD) {
			// Someone else reaped it; report it as killed rather than hang.
			ch <- exitInfo{status: unix.WaitStatus(unix.SIGKILL), at: time.Now()}
			delete(r.waiting, pid)
		}
	}
}

func (r *reaper) exited() {
	if r.beforeExit != nil {
		r.beforeExit()
	}
}

func (r *reaper) reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG|unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 {
			if errors.Is(err, unix.ECHILD) {
				r.mu.Lock()
				r.childless = len(r.waiting) == 0
				r.mu.Unlock()
			}
			return
		}
		r.exited()
		r.mu.Lock()
		if ch, ok := r.waiting[pid]; ok {
			ch <- exitInfo{status: ws, at: time.Now()}
			delete(r.waiting, pid)
		}
		r.mu.Unlock()
	}
}
