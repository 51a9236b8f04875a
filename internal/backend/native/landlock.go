//go:build linux

package native

import (
	"fmt"
	"strconv"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// Landlock access rights granted in the sandbox.
const (
	llRead  = llsys.AccessFSExecute | llsys.AccessFSReadFile | llsys.AccessFSReadDir
	llWrite = llsys.AccessFSWriteFile | llsys.AccessFSTruncate | llsys.AccessFSRemoveDir |
		llsys.AccessFSRemoveFile | llsys.AccessFSMakeDir | llsys.AccessFSMakeReg | llsys.AccessFSMakeSock |
		llsys.AccessFSMakeFifo | llsys.AccessFSMakeSym | llsys.AccessFSRefer
	// llWriteFiles writes existing files only (terminals, /dev/null, /proc/self/...).
	llWriteFiles = llsys.AccessFSWriteFile | llsys.AccessFSTruncate
)

// llConfig handles the filesystem rights of ABI 7 (creating device nodes
// and device ioctls included) and scopes abstract unix sockets and signals
// to the sandbox. TCP is left to the network namespace. On older kernels
// it enforces what they support; without Landlock, nothing.
var llConfig = landlock.Config{
	HandledAccessFS: landlock.V7.HandledAccessFS,
	Scoped:          landlock.V7.Scoped,
}.BestEffort()

// landlockRuleset builds (but does not enforce) the sandbox's ruleset while
// the new root is still reachable at /proc/self/fd/<root>; rules hold the
// inodes, so they stay valid after pivot_root.
//
//   - read and execute everywhere in the new root;
//   - write everywhere when the root is writable, otherwise only in /tmp,
//     /dev/shm and read-write mounts (plus writing existing files in /dev
//     and /proc: terminals, /dev/null, /proc/self/...);
//   - never create device nodes; device ioctls only on terminals and
//     /dev/null;
//   - execute and read the agent binary, which lives outside the root and
//     is exec'd through its descriptor.
func landlockRuleset(cfg *initConfig, root int) (fd int, flags uint32, err error) {
	base := "/proc/self/fd/" + strconv.Itoa(root)
	in := func(paths ...string) []string {
		out := make([]string, len(paths))
		for i, p := range paths {
			out[i] = base + p
		}
		return out
	}
	rules := []landlock.Rule{
		landlock.PathAccess(llRead, base),
		landlock.PathAccess(llsys.AccessFSExecute|llsys.AccessFSReadFile, "/proc/self/fd/"+strconv.Itoa(agentFD)),
		landlock.PathAccess(llsys.AccessFSIoctlDev, in("/dev/pts", "/dev/tty", "/dev/null")...).IgnoreIfMissing(),
	}
	if !cfg.ReadOnlyRoot {
		rules = append(rules, landlock.PathAccess(llRead|llWrite, base))
	} else {
		rules = append(rules,
			landlock.PathAccess(llRead|llWrite, in("/tmp", "/dev/shm")...),
			landlock.PathAccess(llWriteFiles, in("/dev", "/proc")...),
		)
		for _, b := range cfg.Binds {
			if !b.ReadOnly {
				acc := llRead | llWrite
				if b.File {
					acc = llsys.AccessFSExecute | llsys.AccessFSReadFile | llWriteFiles
				}
				rules = append(rules, landlock.PathAccess(landlock.AccessFSSet(acc), in(b.Target)...))
			}
		}
	}
	fd, flags, err = llConfig.NewRulesetFD(rules...)
	if err != nil {
		return -1, 0, fmt.Errorf("building the ruleset: %w", err)
	}
	return fd, flags, nil
}

// restrictLandlock enforces the ruleset on this thread (no_new_privs must
// be set); the agent inherits it across exec.
func restrictLandlock(fd int, flags uint32) error {
	if fd < 0 {
		return nil // no Landlock on this kernel
	}
	if err := llsys.LandlockRestrictSelf(fd, flags); err != nil {
		return fmt.Errorf("landlock_restrict_self: %w", err)
	}
	return nil
}
