//go:build linux

package native

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/cgroups"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/nettap"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// launch is one spawn of the init stage: the command, the descriptors it
// inherits, and the host's ends of its pipes.
type launch struct {
	cmd     *exec.Cmd
	cfg     initConfig
	logPath string
	// inherited are the child's descriptors; the host's copies are closed
	// once it runs (and on error).
	inherited []*os.File
	// cfgW and statusR are the host's ends of the config and status pipes;
	// netSock, of the socket an unprivileged init sends the sandbox's TAP
	// device on.
	cfgW, statusR, netSock *os.File
	// nat: the sandbox has network access (a TAP device to attach).
	nat    bool
	exited chan struct{} // closed when init has exited and been reaped
}

// newLaunch prepares everything init inherits: the agent's listening
// socket, the agent binary, the log, the mount trees, the cgroup files, the
// pipes, and the command with its namespaces and id mappings.
func (b *Backend) newLaunch(spec *sandbox.Spec, ids idMap, group *cgroups.Group, undo *cleanups) (_ *launch, err error) {
	l := &launch{logPath: filepath.Join(spec.Dir, logName), exited: make(chan struct{})}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	keep := func(f *os.File) *os.File { l.inherited = append(l.inherited, f); return f }

	sock, err := listenUnix(socketPath(spec))
	if err != nil {
		return nil, err
	}
	keep(sock)
	undo.add(func() { os.Remove(socketPath(spec)) })
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	keep(cfgR)
	l.cfgW = cfgW
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	keep(statusW)
	l.statusR = statusR
	agent, err := os.Open(b.opts.AgentPath)
	if err != nil {
		return nil, fmt.Errorf("agent binary: %w: %w", errdefs.ErrUnavailable, err)
	}
	keep(agent) // fds listenFD..agentFD, in order

	cfg, trees, err := buildInitConfig(spec, ids)
	l.inherited = append(l.inherited, trees...)
	if err != nil {
		return nil, err
	}
	var v2dir *os.File
	if group != nil {
		tasks, err := group.TaskFiles()
		if err != nil {
			return nil, err
		}
		for _, f := range tasks {
			// ExtraFiles[i] is the child's descriptor 3+i.
			cfg.CgroupFDs = append(cfg.CgroupFDs, listenFD+len(l.inherited))
			keep(f)
		}
		if v2dir, err = group.V2Dir(); err != nil {
			return nil, err
		}
	}
	l.nat = spec.Config.Network == sandbox.NetworkNAT
	if l.nat && ids.rootless() {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("network socket: %w", err)
		}
		l.netSock = os.NewFile(uintptr(fds[0]), "net")
		cfg.NetFD = listenFD + len(l.inherited)
		keep(os.NewFile(uintptr(fds[1]), "net-init"))
	}
	l.cfg = cfg

	_, statErr := os.Lstat(l.logPath)
	logf, err := os.OpenFile(l.logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if statErr != nil {
		undo.add(func() { os.Remove(l.logPath) }) // its tail is in the error
	}

	l.cmd = &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{initArg0},
		Env:        []string{},
		Dir:        "/",
		Stdout:     logf,
		Stderr:     logf,
		ExtraFiles: slices.Clone(l.inherited),
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWNET |
				unix.CLONE_NEWIPC | unix.CLONE_NEWUTS,
			UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: ids.UID, Size: ids.Size}},
			GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: ids.GID, Size: ids.Size}},
			GidMappingsEnableSetgroups: !ids.rootless(),
			// Become root of the new user namespace (and, as root on the
			// host, drop the host's supplementary groups).
			Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: ids.rootless()},
			Setsid:     true,
		},
	}
	l.inherited = append(l.inherited, logf) // closed with the others; not in ExtraFiles
	if v2dir != nil {
		// Born in its v2 group; v1 groups are joined by init itself.
		l.cmd.SysProcAttr.UseCgroupFD = true
		l.cmd.SysProcAttr.CgroupFD = int(v2dir.Fd())
		l.inherited = append(l.inherited, v2dir)
	}
	return l, nil
}

// start spawns init; it waits for its configuration.
func (l *launch) start(undo *cleanups) error {
	if err := l.cmd.Start(); err != nil {
		return fmt.Errorf("spawning the sandbox init: %w", err)
	}
	go func() {
		l.cmd.Wait() // reaps init whenever it ends, while this process lives
		close(l.exited)
	}()
	undo.add(func() {
		l.cmd.Process.Kill()
		<-l.exited
	})
	if err := idmapTrees(l.cmd.Process.Pid, l.cfg.imageTrees); err != nil {
		return err
	}
	closeAll(l.inherited) // the child has its own copies
	l.inherited = nil
	return nil
}

// attachNetwork makes the sandbox's TAP device in its network namespace
// (or, unprivileged, receives it from init, which makes it) and hands it,
// with a pidfd of init, to the network path; it returns the published
// ports as bound.
func (l *launch) attachNetwork(ctx context.Context, net sandbox.NetworkAttacher) ([]sandbox.PortMapping, error) {
	var tap *os.File
	var err error
	if l.netSock != nil {
		tap, err = receiveTAP(ctx, l.netSock)
	} else {
		tap, err = nettap.CreateIn(l.cmd.Process.Pid)
	}
	if err != nil {
		return nil, fmt.Errorf("the sandbox's network interface: %w", err)
	}
	pidfd, err := unix.PidfdOpen(l.cmd.Process.Pid, 0)
	if err != nil {
		tap.Close()
		return nil, fmt.Errorf("pidfd of the sandbox init: %w", err)
	}
	ports, err := net.AttachTAP(ctx, tap, os.NewFile(uintptr(pidfd), "pidfd"))
	if err != nil {
		return nil, fmt.Errorf("attaching the sandbox's network: %w", err)
	}
	return ports, nil
}

// configure sends init its configuration.
func (l *launch) configure() error {
	err := json.NewEncoder(l.cfgW).Encode(l.cfg)
	if cerr := l.cfgW.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("configuring the sandbox init: %w", err)
	}
	return nil
}

// close releases the host's descriptors.
func (l *launch) close() {
	closeAll(l.inherited)
	l.inherited = nil
	for _, f := range []*os.File{l.cfgW, l.statusR, l.netSock} {
		if f != nil {
			f.Close()
		}
	}
}

// waitExec waits until the init stage execs the agent (the status pipe
// closes with nothing written) or reports why it failed.
func (l *launch) waitExec(ctx context.Context) error {
	status, exited, logPath := l.statusR, l.exited, l.logPath
	type result struct {
		b   []byte
		err error
	}
	rc := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(status)
		rc <- result{b, err}
	}()
	var r result
	select {
	case r = <-rc:
	case <-ctx.Done():
		return fmt.Errorf("starting the sandbox: %w", ctx.Err())
	}
	if r.err != nil {
		return fmt.Errorf("sandbox init status: %w", r.err)
	}
	if len(r.b) > 0 {
		var ie initError
		if json.Unmarshal(r.b, &ie) == nil && ie.Error != "" {
			return fmt.Errorf("sandbox init: %s: %s", ie.Stage, ie.Error)
		}
		return fmt.Errorf("sandbox init: %s", strings.TrimSpace(string(r.b)))
	}
	select {
	case <-exited:
		return fmt.Errorf("sandbox init died before starting the agent%s", logTail(logPath))
	default:
	}
	return nil
}
