//go:build linux

package native

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/nettap"
	"github.com/agentkernel-go/agentkernel/internal/procfs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// agentReadyTimeout bounds the wait for a started agent to answer.
const agentReadyTimeout = 30 * time.Second

// Start brings a sandbox up: it allocates the sandbox's id range, creates
// its overlay directories, cgroups and agent socket, spawns the init stage
// in new namespaces, hands it its configuration, and returns once the
// agent answers. Seeding a fresh upper directory overlaps with the init
// stage's own start-up. On error everything acquired is released.
func (b *Backend) Start(ctx context.Context, spec *sandbox.Spec) (_ *sandbox.Runtime, err error) {
	if spec.Config.Network == sandbox.NetworkNAT && spec.Network == nil {
		return nil, fmt.Errorf("network mode nat without a network path: %w", errdefs.ErrInvalidArgument)
	}
	if err := b.Probe(ctx); err != nil {
		return nil, err
	}
	var undo cleanups
	defer func() {
		if err != nil {
			undo.run()
		}
	}()

	ids, err := b.acquireIDs(spec, &undo)
	if err != nil {
		return nil, err
	}
	fresh, err := makeOverlayDirs(spec, ids)
	if err != nil {
		return nil, fmt.Errorf("preparing the root filesystem: %w", err)
	}
	if fresh {
		undo.add(func() { removeAll(filepath.Join(spec.Dir, overlayName)) })
	}
	if spec.Config.Network == sandbox.NetworkNAT {
		if err := os.WriteFile(filepath.Join(spec.Dir, resolvConfName), []byte(nettap.ResolvConf()), 0o644); err != nil {
			return nil, err
		}
	}
	group, err := b.createCgroups(spec, ids, &undo)
	if err != nil {
		return nil, err
	}
	l, err := b.newLaunch(spec, ids, group, &undo)
	if err != nil {
		return nil, err
	}
	defer l.close()
	if err := l.start(&undo); err != nil {
		return nil, err
	}
	type attached struct {
		ports []sandbox.PortMapping
		err   error
	}
	netDone := make(chan attached, 1)
	if l.nat {
		// Meanwhile init sets up the rest of the sandbox.
		go func() {
			ports, err := l.attachNetwork(ctx, spec.Network)
			netDone <- attached{ports, err}
		}()
		defer func() {
			if err != nil { // not waited for below: stop it, and wait
				if l.netSock != nil {
					unix.Shutdown(int(l.netSock.Fd()), unix.SHUT_RDWR)
				}
				<-netDone
			}
		}()
	} else {
		netDone <- attached{}
	}
	// While the init stage's runtime starts up:
	if fresh {
		if err := seedUpper(spec, ids); err != nil {
			return nil, fmt.Errorf("preparing the root filesystem: %w", err)
		}
	}
	if err := l.configure(); err != nil {
		return nil, err
	}
	if err := l.waitExec(ctx); err != nil {
		return nil, err
	}
	if err := waitAgent(ctx, spec, l.exited, l.logPath); err != nil {
		return nil, err
	}
	nw := <-netDone
	netDone <- nw // for the deferred wait, should a later step fail
	if nw.err != nil {
		return nil, nw.err
	}
	pid := l.cmd.Process.Pid
	_, start, err := procfs.Stat(pid)
	if err != nil {
		return nil, fmt.Errorf("sandbox init: %w", err)
	}
	ex := extra{HostUID: ids.UID, HostGID: ids.GID, IDs: ids.Size, Slot: ids.Slot}
	if group != nil {
		ex.Cgroups, ex.Limits = group.Dirs, true
	}
	raw, _ := json.Marshal(ex)
	b.log.Debug("native sandbox started", "name", spec.Name, "pid", pid, "host_uid", ids.UID, "limits", ex.Limits)
	return &sandbox.Runtime{PID: pid, StartTime: start, Ports: nw.ports, Extra: raw}, nil
}

// waitAgent returns once the agent answers the version handshake.
func waitAgent(ctx context.Context, spec *sandbox.Spec, exited <-chan struct{}, logPath string) error {
	ctx, cancel := context.WithTimeout(ctx, agentReadyTimeout)
	defer cancel()
	c := agentv1.NewClient(func(ctx context.Context) (net.Conn, error) {
		return dialUnix(ctx, socketPath(spec))
	})
	defer c.Close()
	if _, err := c.Version(ctx); err != nil {
		select {
		case <-exited:
			return fmt.Errorf("sandbox agent exited at start%s", logTail(logPath))
		default:
		}
		return fmt.Errorf("sandbox agent not answering: %w%s", err, logTail(logPath))
	}
	return nil
}

// logTail returns the end of the sandbox's log, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "; log:\n" + strings.TrimSpace(string(b))
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// cleanups is a stack of undo functions, run once in reverse order.
type cleanups struct {
	fns []func()
}

func (c *cleanups) add(fn func()) { c.fns = append(c.fns, fn) }

func (c *cleanups) run() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
	c.fns = nil
}
