package agent

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/netif"
)

// A microVM's agent is the guest's /init, started by the kernel with no
// arguments. It sets up what a distribution's init would (the kernel
// filesystems, the modules the guest kernel keeps its virtio drivers in),
// then serves the host over a virtio-serial port.

// modulesList is where the initramfs lists the modules to load, in order
// (package guest writes it on the host).
const modulesList = "/etc/agentkernel/modules"

// defaultPort is the virtio-serial ports' name when the command line
// names none.
const defaultPort = "agentkernel"

// nicName is the guest's one network interface, virtio-net's first.
const nicName = "eth0"

// vmInit prepares the guest: the kernel filesystems, the modules, the
// sandbox's root, and returns the boot configuration and the devices of
// the agent's ports.
func vmInit(log *slog.Logger) (v1.BootConfig, []string, error) {
	if err := mountKernelFilesystems(); err != nil {
		return v1.BootConfig{}, nil, err
	}
	consoleStdio()
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return v1.BootConfig{}, nil, err
	}
	cfg, err := v1.ParseBootConfig(string(cmdline))
	if err != nil {
		return cfg, nil, err
	}
	if err := loadModules(log, modulesList); err != nil {
		return cfg, nil, err
	}
	if err := switchRoot(cfg); err != nil {
		return cfg, nil, fmt.Errorf("the sandbox's root: %w", err)
	}
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			log.Warn("setting the hostname", "err", err)
		}
	}
	if err := netif.LoopbackUp(); err != nil {
		log.Warn("bringing up lo", "err", err)
	}
	if len(cfg.Addrs) > 0 {
		if err := netif.Configure(nicName, cfg.MTU, cfg.Addrs, cfg.Gateways); err != nil {
			return cfg, nil, fmt.Errorf("the network interface: %w", err)
		}
	}
	if cfg.Port == "" {
		cfg.Port = defaultPort
	}
	ports, err := findPorts(cfg.Port, 10*time.Second)
	return cfg, ports, err
}

func mountKernelFilesystems() error {
	for _, m := range []struct {
		target, fstype, data string
		flags                uintptr
	}{
		{"/proc", "proc", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"/sys", "sysfs", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"/dev", "devtmpfs", "mode=0755", unix.MS_NOSUID},
		{"/dev/pts", "devpts", "newinstance,ptmxmode=0666,mode=0620", unix.MS_NOSUID | unix.MS_NOEXEC},
		{"/dev/shm", "tmpfs", "mode=1777", unix.MS_NOSUID | unix.MS_NODEV},
		{"/run", "tmpfs", "mode=0755", unix.MS_NOSUID | unix.MS_NODEV},
		{"/tmp", "tmpfs", "mode=1777", unix.MS_NOSUID | unix.MS_NODEV},
	} {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return fmt.Errorf("mount point %s: %w", m.target, err)
		}
		if err := unix.Mount(m.fstype, m.target, m.fstype, m.flags, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mounting %s on %s: %w", m.fstype, m.target, err)
		}
	}
	// /dev/ptmx must be the new devpts instance's, as in a container.
	os.Remove("/dev/ptmx")
	return os.Symlink("pts/ptmx", "/dev/ptmx")
}

// consoleStdio gives init the console as stdin, stdout and stderr when
// the kernel could not (an initramfs has no /dev/console node until
// devtmpfs is mounted), so the agent's log reaches the console.
func consoleStdio() {
	if _, err := unix.FcntlInt(2, unix.F_GETFD, 0); err == nil {
		return
	}
	fd, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return
	}
	for i := range 3 {
		if i != fd {
			unix.Dup3(fd, i, 0)
		}
	}
	if fd > 2 {
		unix.Close(fd)
	}
}

// loadModules loads the modules listed in file, in order; a module
// already loaded (or built in) is not an error. No list: nothing to load.
func loadModules(log *slog.Logger, file string) error {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		path := strings.TrimSpace(sc.Text())
		if path == "" || strings.HasPrefix(path, "#") {
			continue
		}
		if err := loadModule(path); err != nil {
			return err
		}
		log.Debug("module loaded", "path", path)
	}
	return sc.Err()
}

func loadModule(path string) error {
	m, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("module %s: %w", path, err)
	}
	defer m.Close()
	if err := unix.FinitModule(int(m.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("loading module %s: %w", filepath.Base(path), err)
	}
	return nil
}

// findPorts waits for the virtio-serial ports called name.0, name.1, ...
// to appear (their driver probes devices after the module loads) and
// returns their devices. The host makes them all at once, but the guest
// may see them one by one: it waits until the count holds still.
func findPorts(name string, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	var found []string
	stable := 0
	for {
		prev := len(found)
		found = found[:0]
		ports, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, p := range ports {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			if n := strings.TrimSpace(string(b)); strings.HasPrefix(n, name+".") {
				found = append(found, filepath.Join("/dev", filepath.Base(filepath.Dir(p))))
			}
		}
		if len(found) > 0 && len(found) == prev {
			if stable++; stable == 4 {
				return found, nil
			}
		} else {
			stable = 0
		}
		if time.Now().After(deadline) {
			if len(found) > 0 {
				return found, nil
			}
			return nil, fmt.Errorf("no virtio-serial port named %s.N after %v", name, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fanIn accepts from several listeners at once.
type fanIn struct {
	lns    []net.Listener
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newFanIn(lns ...net.Listener) *fanIn {
	f := &fanIn{lns: lns, conns: make(chan net.Conn), closed: make(chan struct{})}
	for _, ln := range lns {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				select {
				case f.conns <- c:
				case <-f.closed:
					c.Close()
					return
				}
			}
		}()
	}
	return f
}

func (f *fanIn) Accept() (net.Conn, error) {
	select {
	case c := <-f.conns:
		return c, nil
	case <-f.closed:
		return nil, net.ErrClosed
	}
}

func (f *fanIn) Close() error {
	f.once.Do(func() {
		close(f.closed)
		for _, ln := range f.lns {
			ln.Close()
		}
	})
	return nil
}

func (f *fanIn) Addr() net.Addr { return f.lns[0].Addr() }

// portListener hands out one connection at a time over a virtio-serial
// port: the host's side of the port is a socket that one client holds at
// a time, and when it lets go, the next one gets a fresh connection.
type portListener struct {
	path   string
	free   chan struct{} // a token: no connection is open
	closed chan struct{}
	once   sync.Once
}

func newPortListener(path string) *portListener {
	l := &portListener{path: path, free: make(chan struct{}, 1), closed: make(chan struct{})}
	l.free <- struct{}{}
	return l
}

// Accept waits until the previous connection is closed and the host is
// connected to the port (the port polls as hung up until then).
func (l *portListener) Accept() (net.Conn, error) {
	select {
	case <-l.free:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	for {
		c, err := l.open()
		if err == nil {
			return c, nil
		}
		select {
		case <-l.closed:
			l.free <- struct{}{}
			return nil, net.ErrClosed
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// open opens the port once the host is there to talk to.
func (l *portListener) open() (net.Conn, error) {
	fd, err := unix.Open(l.path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if _, err := unix.Poll(fds, 0); err != nil || fds[0].Revents&unix.POLLHUP != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("host not connected to %s", l.path)
	}
	raw := &fileConn{File: os.NewFile(uintptr(fd), l.path)}
	sc, err := v1.AcceptSerial(raw)
	if err != nil {
		raw.Close() // Accept still holds the token and tries again
		return nil, err
	}
	return &notifyConn{Conn: sc, onClose: func() { l.free <- struct{}{} }}, nil
}

func (l *portListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *portListener) Addr() net.Addr { return fileAddr(l.path) }

// vmMain is Main for the agent as a microVM's init: the supervisor. It
// never returns normally: init exiting would panic the kernel, so every
// end — the serving agent's (a stop the host asked for) or a failure —
// restarts the machine, which QEMU (run with -no-reboot) turns into its
// own exit.
func vmMain(log *slog.Logger, grace time.Duration) int {
	defer func() {
		unix.Sync()
		unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	}()
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		log.Warn("making init undumpable", "err", err)
	}
	cfg, ports, err := vmInit(log)
	if err == nil {
		err = hardenKernel(log, cfg)
	}
	var cg *os.File
	if err == nil {
		cg, err = sandboxCgroup(cfg)
	}
	if err == nil {
		if ctl, cerr := findPorts(v1.ControlPort, 100*time.Millisecond); cerr == nil {
			go serveControl(log, ctl[0])
		}
		err = runSandbox(log, cfg, ports, cg, grace)
	}
	if err != nil {
		log.Error("microVM init", "err", err)
		return 1
	}
	return 0
}
