package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/caps"
)

// Inside a microVM the guest kernel is the sandbox's alone, and the VM is
// its boundary. The agent still confines what runs in it as a native
// sandbox is confined, so that sandbox root cannot undo its own limits or
// attack the agent: the guest's init (the supervisor) hardens the kernel
// once, then runs the serving agent as PID 1 of its own pid and mount
// namespaces, in a cgroup holding the sandbox's limits, with sandbox
// root's capabilities only.

// hardenKernel turns off, for the rest of the guest's life, what sandbox
// root could otherwise reach even without capabilities, or regain
// through a user namespace.
func hardenKernel(log *slog.Logger, cfg v1.BootConfig) error {
	ptrace := "3" // no attaching at all
	if cfg.AllowPtrace {
		ptrace = "1" // only one's own descendants
	}
	for _, s := range []struct {
		key, value string
		required   bool
	}{
		{"kernel/modules_disabled", "1", true},
		{"user/max_user_namespaces", "0", true},
		{"kernel/yama/ptrace_scope", ptrace, true},
		{"kernel/unprivileged_bpf_disabled", "1", false},
		{"kernel/kexec_load_disabled", "1", false},
		{"kernel/perf_event_paranoid", "3", false},
		{"kernel/kptr_restrict", "2", false},
		{"kernel/dmesg_restrict", "1", false},
		{"kernel/sysrq", "0", false},
		// Written data reaches the sandbox's disk within a second or so,
		// so a VM that is killed loses little.
		{"vm/dirty_expire_centisecs", "100", false},
		{"vm/dirty_writeback_centisecs", "100", false},
	} {
		err := os.WriteFile(filepath.Join("/proc/sys", s.key), []byte(s.value), 0)
		if err != nil && s.required {
			return fmt.Errorf("sysctl %s=%s: %w", s.key, s.value, err)
		}
		if err != nil {
			log.Warn("sysctl", "key", s.key, "err", err)
		}
	}
	return nil
}

// cgroupRoot is where the guest's cgroup2 hierarchy is mounted for the
// supervisor; the serving agent's mount namespace does not have it.
const cgroupRoot = "/sys/fs/cgroup"

// sandboxCgroup makes the cgroup holding the sandbox's limits and returns
// an open descriptor of it, for the serving agent to be started in.
func sandboxCgroup(cfg v1.BootConfig) (*os.File, error) {
	if err := unix.Mount("cgroup2", cgroupRoot, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, fmt.Errorf("mounting cgroup2: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"), []byte("+pids +cpu"), 0); err != nil {
		return nil, fmt.Errorf("enabling the pids and cpu controllers: %w", err)
	}
	dir := filepath.Join(cgroupRoot, "sandbox")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	if cfg.PidsLimit > 0 {
		if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte(strconv.Itoa(cfg.PidsLimit)), 0); err != nil {
			return nil, fmt.Errorf("pids limit: %w", err)
		}
	}
	if cfg.CPUPercent > 0 {
		const period = 100000
		quota := cfg.CPUPercent * runtime.NumCPU() * period / 100
		if err := os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(fmt.Sprintf("%d %d", quota, period)), 0); err != nil {
			return nil, fmt.Errorf("cpu limit: %w", err)
		}
	}
	return os.Open(dir)
}

// Flags of the serving agent's two stages: the first confines itself and
// re-executes as the second, so that the capability limits, which are
// per thread, hold for the whole process and every thread it forks from.
const (
	flagVMSandbox = "vm-sandbox"
	flagVMServe   = "vm-serve"
)

// runSandbox starts the serving agent and waits for it, reaping whatever
// else ends in the meantime; it returns when the agent has exited.
func runSandbox(log *slog.Logger, cfg v1.BootConfig, ports []string, cg *os.File, grace time.Duration) error {
	args := []string{"agentkernel-agent", "-" + flagVMSandbox, strings.Join(ports, ","), "-grace", grace.String()}
	if cfg.StrictCaps {
		args = append(args, "-vm-strict")
	}
	pid, err := syscall.ForkExec("/proc/self/exe", args, &syscall.ProcAttr{
		Env:   []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{
			Cloneflags:  unix.CLONE_NEWPID | unix.CLONE_NEWNS,
			UseCgroupFD: true,
			CgroupFD:    int(cg.Fd()),
		},
	})
	if err != nil {
		return fmt.Errorf("starting the sandbox's agent: %w", err)
	}
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("waiting for the sandbox's agent: %w", err)
		}
		if wpid == pid {
			log.Info("sandbox agent exited", "status", ws.ExitStatus(), "signal", ws.Signal())
			return nil
		}
	}
}

// confineSandbox is the serving agent's first stage, PID 1 of fresh pid
// and mount namespaces: it gives the namespace its own /proc, takes the
// kernel's tunables and the cgroup hierarchy out of reach, limits
// capabilities and re-executes itself to serve.
func confineSandbox(ports string, grace time.Duration, strict bool) error {
	runtime.LockOSThread()
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := unix.Unmount(cgroupRoot, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("hiding the cgroup hierarchy: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	for _, p := range []string{"/proc/sys", "/sys"} {
		if err := bindReadOnly(p, p, 0); err != nil {
			return err
		}
	}
	if err := unix.Mount("/dev/null", "/proc/sysrq-trigger", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("masking /proc/sysrq-trigger: %w", err)
	}
	keep := caps.Default
	if strict {
		keep = caps.Strict
	}
	if err := caps.Limit(keep); err != nil {
		return err
	}
	args := []string{"agentkernel-agent", "-" + flagVMServe, ports, "-grace", grace.String()}
	return unix.Exec("/proc/self/exe", args, os.Environ())
}

// serveSandbox is the serving agent's second stage: the agent proper,
// serving the host on the virtio-serial ports.
func serveSandbox(log *slog.Logger, ports []string, grace time.Duration) error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		log.Warn("making the agent undumpable", "err", err)
	}
	reserveThreads(8)
	s := New(Options{Logger: log, ReapAll: true, Init: true, Grace: grace, SyncOnExit: true})
	lns := make([]net.Listener, len(ports))
	for i, p := range ports {
		lns[i] = newPortListener(p)
	}
	ln := newFanIn(lns...)
	// The guest's uptime says how much of a boot is the guest's own.
	uptime, _ := os.ReadFile("/proc/uptime")
	up, _, _ := strings.Cut(string(uptime), " ")
	log.Info("agent serving", "version", s.version, "ports", ports, "uptime_s", up)
	return s.Serve(context.Background(), ln)
}
