package policy

import (
	"fmt"
	"slices"

	libseccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// Options choose a policy (the same fields as seccomp.Options, which
// cannot be shared: seccomp builds on this package where no prebuilt
// filter exists).
type Options struct {
	Profile     string
	AllowPtrace bool
}

// Namespace-creating clone/unshare flags (linux/sched.h).
const (
	cloneNewNS     = 0x00020000
	cloneNewCgroup = 0x02000000
	cloneNewUTS    = 0x04000000
	cloneNewIPC    = 0x08000000
	cloneNewUser   = 0x10000000
	cloneNewPID    = 0x20000000
	cloneNewNet    = 0x40000000
	cloneNewTime   = 0x00000080 // unshare only: in clone(2) these bits are the exit signal

	cloneNamespaces   = cloneNewNS | cloneNewCgroup | cloneNewUTS | cloneNewIPC | cloneNewUser | cloneNewPID | cloneNewNet
	unshareNamespaces = cloneNamespaces | cloneNewTime
)

// Address families (linux/socket.h).
const (
	afUnix    = 1
	afInet    = 2
	afInet6   = 10
	afNetlink = 16
	afVsock   = 40
)

// Personalities that stay allowed (as in Docker's profile): PER_LINUX,
// PER_LINUX32, UNAME26, UNAME26|PER_LINUX32 and the query value.
var allowedPersonalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// addrNoRandomize is personality(ADDR_NO_RANDOMIZE), used by gdb and setarch -R.
const addrNoRandomize = 0x0040000

// denied fail with EPERM in every confined profile: they change the
// mount table or namespaces, reach the kernel or the machine as a whole,
// or expose kernel attack surface a workload has no use for. Most need a
// capability the sandbox does not have anyway; the filter is the second wall.
var denied = []string{
	// Mount table and filesystem views.
	"mount", "umount", "umount2", "pivot_root", "move_mount", "open_tree", "open_tree_attr",
	"fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr",
	// Joining namespaces (creating them is checked by flag below).
	"setns",
	// The machine: kernel images and modules, power, swap, accounting,
	// clocks, the kernel log, terminals of others, raw I/O ports.
	"kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module", "create_module", "get_kernel_syms", "query_module",
	"reboot", "swapon", "swapoff", "acct", "syslog", "vhangup",
	"settimeofday", "stime", "clock_settime", "clock_settime64", "clock_adjtime", "clock_adjtime64", "adjtimex",
	"iopl", "ioperm",
	"quotactl", "quotactl_fd",
	// File handles bypass path-based checks.
	"open_by_handle_at", "name_to_handle_at",
	// Kernel attack surface and global (not namespaced) state.
	"bpf", "perf_event_open", "userfaultfd", "fanotify_init",
	"keyctl", "add_key", "request_key",
	"lookup_dcookie",
	// Obsolete or unimplemented calls.
	"nfsservctl", "uselib", "sysfs", "_sysctl", "ustat", "afs_syscall", "tuxcall", "security",
	"vserver", "putpmsg", "getpmsg", "break", "ftime", "gtty", "stty", "lock", "mpx", "prof", "profil", "ulimit",
}

// ptraceFamily reads or controls other processes; denied unless AllowPtrace.
var ptraceFamily = []string{"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd"}

// strictDenied are denied by the strict profile on top of denied and
// ptraceFamily: io_uring (a large, frequently exploited interface),
// chroot, NUMA memory policy, madvise of other processes, and mknod.
var strictDenied = []string{
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"chroot",
	"mbind", "set_mempolicy", "set_mempolicy_home_node", "migrate_pages", "move_pages",
	"process_madvise",
	"mknod", "mknodat",
}

// Policy returns the filter policy for o on goarch, or nil for the
// unconfined profile. Names the architecture does not have are left out.
func Policy(goarch string, o Options) (*libseccomp.Policy, error) {
	info, err := arch.GetInfo(goarch)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w: %w", err, errdefs.ErrUnavailable)
	}
	return policyFor(info, o)
}

// Program assembles the whole filter for o on goarch: a guard that fails
// system calls of any other ABI with ENOSYS, then the policy. Nil for the
// unconfined profile.
func Program(goarch string, o Options) ([]bpf.RawInstruction, error) {
	p, err := Policy(goarch, o)
	if err != nil || p == nil {
		return nil, err
	}
	info, _ := arch.GetInfo(goarch)
	insts, err := p.Assemble()
	if err != nil {
		return nil, fmt.Errorf("seccomp: assembling the policy: %w", err)
	}
	raw, err := bpf.Assemble(append(archGuard(uint32(info.ID)), insts...))
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	return raw, nil
}

// archGuard fails every system call whose audit arch is not native: the
// policy matches native syscall numbers only, and int 0x80 or x32 calls
// would otherwise reach its default action (allow).
func archGuard(native uint32) []bpf.Instruction {
	const archOffset = 4 // struct seccomp_data { int nr; __u32 arch; ... }
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: archOffset, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: native, SkipTrue: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
	}
}

func policyFor(info *arch.Info, o Options) (*libseccomp.Policy, error) {
	strict := false
	switch o.Profile {
	case sandbox.SeccompUnconfined:
		return nil, nil
	case sandbox.SeccompDefault, "":
	case sandbox.SeccompStrict:
		strict = true
	default:
		return nil, fmt.Errorf("seccomp profile %q: %w", o.Profile, errdefs.ErrInvalidArgument)
	}
	has := func(name string) bool { _, ok := info.SyscallNames[name]; return ok }
	present := func(names ...[]string) []string {
		var out []string
		for _, l := range names {
			for _, n := range l {
				if has(n) && !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
		return out
	}

	deny := present(denied)
	allowPtrace := o.AllowPtrace && !strict
	if !allowPtrace {
		deny = present(deny, ptraceFamily)
	}
	if strict {
		deny = present(deny, strictDenied)
	}

	var cond []libseccomp.NameWithConditions
	addCond := func(name string, c ...libseccomp.Condition) {
		if has(name) {
			cond = append(cond, libseccomp.NameWithConditions{Name: name, Conditions: c})
		}
	}
	// Creating namespaces: clone with namespace flags, unshare likewise.
	addCond("clone", libseccomp.Condition{Argument: 0, Operation: libseccomp.BitsSet, Value: cloneNamespaces})
	addCond("unshare", libseccomp.Condition{Argument: 0, Operation: libseccomp.BitsSet, Value: unshareNamespaces})
	// personality: only the harmless values (all conditions must hold).
	persona := allowedPersonalities
	if allowPtrace {
		persona = append(slices.Clone(persona), addrNoRandomize)
	}
	var pc []libseccomp.Condition
	for _, v := range persona {
		pc = append(pc, libseccomp.Condition{Argument: 0, Operation: libseccomp.NotEqual, Value: v})
	}
	addCond("personality", pc...)
	// Sockets: AF_VSOCK reaches the hypervisor and is not namespaced;
	// strict allows only unix, inet, inet6 and netlink.
	if strict {
		addCond("socket",
			libseccomp.Condition{Argument: 0, Operation: libseccomp.NotEqual, Value: afUnix},
			libseccomp.Condition{Argument: 0, Operation: libseccomp.NotEqual, Value: afInet},
			libseccomp.Condition{Argument: 0, Operation: libseccomp.NotEqual, Value: afInet6},
			libseccomp.Condition{Argument: 0, Operation: libseccomp.NotEqual, Value: afNetlink})
	} else {
		addCond("socket", libseccomp.Condition{Argument: 0, Operation: libseccomp.Equal, Value: afVsock})
	}

	groups := []libseccomp.SyscallGroup{
		{Names: deny, NamesWithCondtions: cond, Action: libseccomp.ActionErrno | libseccomp.Action(errnoEPERM)},
	}
	// clone3 passes its flags in memory the filter cannot read: make it
	// look unimplemented, and libc and Go fall back to clone.
	if has("clone3") {
		groups = append(groups, libseccomp.SyscallGroup{Names: []string{"clone3"}, Action: libseccomp.ActionErrno | libseccomp.Action(errnoENOSYS)})
	}
	p := &libseccomp.Policy{DefaultAction: libseccomp.ActionAllow, Syscalls: groups}
	return p, nil
}

// Errno values returned by denied calls.
const (
	errnoEPERM  = 1
	errnoENOSYS = 38
)

// Denied lists the system calls the profile o denies unconditionally, for
// documentation (`agentkernel doctor`) and tests.
func Denied(goarch string, o Options) ([]string, error) {
	p, err := Policy(goarch, o)
	if err != nil || p == nil {
		return nil, err
	}
	var out []string
	for _, g := range p.Syscalls {
		out = append(out, g.Names...)
	}
	slices.Sort(out)
	return out, nil
}
