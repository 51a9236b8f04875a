//go:build linux

package native

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/caps"
	"github.com/agentkernel-go/agentkernel/internal/cgroups"
	"github.com/agentkernel-go/agentkernel/internal/netif"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/seccomp"
)

// MaybeInit runs the native backend's init stage and never returns if this
// process is it (argv[0] is "agentkernel-native-init"); otherwise it
// returns at once. Call it first thing in main, and in TestMain of any test
// package that starts native sandboxes.
func MaybeInit() {
	if len(os.Args) == 0 || os.Args[0] != initArg0 {
		return
	}
	// Every per-thread security setting (capabilities, no_new_privs,
	// Landlock, seccomp) is made on this thread, which then execs the
	// agent. It is never unlocked.
	runtime.LockOSThread()
	status := os.NewFile(statusFD, "status")
	stage, err := runInit()
	// runInit only returns on failure.
	b, _ := json.Marshal(initError{Stage: stage, Error: err.Error()})
	status.Write(b)
	os.Exit(1)
}

// runInit sets the sandbox up from inside its namespaces and execs the
// agent. It returns only on failure, naming the stage that failed.
func runInit() (stage string, err error) {
	var cfg initConfig
	f := os.NewFile(configFD, "config")
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return "reading configuration", err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "reading configuration", err
	}

	// Join the sandbox's v1 cgroups with this thread, the one that
	// becomes the agent (a v2 group was joined at clone), before anything
	// else; then a new cgroup namespace of this thread shows them as root.
	for _, fd := range cfg.CgroupFDs {
		if err := cgroups.JoinThread(fd); err != nil {
			return "cgroups", err
		}
	}
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return "cgroup namespace", err
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return "hostname", err
	}
	if cfg.NetFD != 0 {
		if err := sendTAP(cfg.NetFD); err != nil {
			return "network", err
		}
	} else if err := netif.LoopbackUp(); err != nil {
		return "loopback", err
	}
	root, err := buildRoot(&cfg)
	if err != nil {
		return "root filesystem", err
	}
	ruleset, rulesetFlags, err := landlockRuleset(&cfg, root)
	if err != nil {
		return "landlock", err
	}
	if err := pivotRoot(root); err != nil {
		return "pivot_root", err
	}
	if err := closeOnExecAll(); err != nil {
		return "descriptors", err
	}
	keep := caps.Default
	if cfg.Seccomp == sandbox.SeccompStrict {
		keep = caps.Strict
	}
	if err := caps.Limit(keep); err != nil {
		return "capabilities", err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return "no_new_privs", err
	}
	if err := restrictLandlock(ruleset, rulesetFlags); err != nil {
		return "landlock", err
	}
	// Last: the filter denies what the steps above needed.
	if err := seccomp.Install(seccomp.Options{Profile: cfg.Seccomp, AllowPtrace: cfg.AllowPtrace}); err != nil {
		return "seccomp", err
	}
	err = syscall.Exec("/proc/self/fd/"+strconv.Itoa(agentFD), cfg.AgentArgs, cfg.AgentEnv)
	return "exec agent", fmt.Errorf("%w", err)
}

// closeOnExecAll marks every descriptor except stdio and the agent's
// listening socket close-on-exec, so the agent inherits nothing else (mount
// trees, cgroup files, pipes, the agent binary, the runtime's own).
func closeOnExecAll() error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 || fd == listenFD {
			continue
		}
		unix.CloseOnExec(fd)
	}
	return nil
}
