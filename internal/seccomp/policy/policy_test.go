//go:build linux && amd64

package policy

import (
	"encoding/binary"
	"slices"
	"testing"

	libseccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// filter runs an assembled policy in the BPF interpreter, the way the
// kernel evaluates it for one system call.
type filter struct {
	t  *testing.T
	vm *bpf.VM
}

func compile(t *testing.T, o Options) *filter {
	t.Helper()
	p, err := Policy("amd64", o)
	if err != nil {
		t.Fatal(err)
	}
	if p == nil {
		t.Fatalf("profile %q built no policy", o.Profile)
	}
	insts, err := p.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	return &filter{t: t, vm: vm}
}

// seccompData encodes struct seccomp_data so that the interpreter, which
// loads words big-endian, sees the values the kernel would load natively.
func seccompData(auditArch uint32, nr int, args ...uint64) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], uint32(nr))
	binary.BigEndian.PutUint32(b[4:], auditArch)
	for i, a := range args {
		off := 16 + 8*i
		binary.BigEndian.PutUint32(b[off:], uint32(a))       // low word first (little-endian machine)
		binary.BigEndian.PutUint32(b[off+4:], uint32(a>>32)) // then the high word
	}
	return b
}

func (f *filter) run(name string, args ...uint64) uint32 {
	f.t.Helper()
	nr, ok := arch.X86_64.SyscallNames[name]
	if !ok {
		f.t.Fatalf("no syscall %s", name)
	}
	ret, err := f.vm.Run(seccompData(uint32(arch.X86_64.ID), nr, args...))
	if err != nil {
		f.t.Fatal(err)
	}
	return uint32(ret)
}

const (
	allow  = unix.SECCOMP_RET_ALLOW
	eperm  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	enosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
)

func TestDefaultProfile(t *testing.T) {
	f := compile(t, Options{Profile: sandbox.SeccompDefault})
	for _, name := range []string{
		"mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig", "fspick",
		"mount_setattr", "setns", "kexec_load", "kexec_file_load", "init_module", "finit_module",
		"delete_module", "reboot", "swapon", "swapoff", "ptrace", "process_vm_readv", "process_vm_writev",
		"kcmp", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "acct",
		"quotactl", "settimeofday", "clock_settime", "adjtimex", "iopl", "ioperm", "lookup_dcookie",
		"open_by_handle_at", "name_to_handle_at", "syslog", "vhangup", "nfsservctl", "uselib", "sysfs", "_sysctl",
	} {
		if got := f.run(name); got != eperm {
			t.Errorf("%s: got %#x, want EPERM", name, got)
		}
	}
	for _, name := range []string{"read", "write", "openat", "execve", "chroot", "io_uring_setup", "mbind", "wait4", "pidfd_open"} {
		if got := f.run(name); got != allow {
			t.Errorf("%s: got %#x, want allow", name, got)
		}
	}
	if got := f.run("clone3"); got != enosys {
		t.Errorf("clone3: got %#x, want ENOSYS", got)
	}
	// clone: threads and forks pass, namespace flags do not.
	thread := uint64(unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD)
	if got := f.run("clone", thread); got != allow {
		t.Errorf("clone(thread): got %#x", got)
	}
	if got := f.run("clone", uint64(unix.SIGCHLD)); got != allow {
		t.Errorf("clone(fork): got %#x", got)
	}
	for _, ns := range []uint64{unix.CLONE_NEWUSER, unix.CLONE_NEWNS, unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWCGROUP, unix.CLONE_NEWIPC, unix.CLONE_NEWUTS} {
		if got := f.run("clone", ns|uint64(unix.SIGCHLD)); got != eperm {
			t.Errorf("clone(%#x): got %#x, want EPERM", ns, got)
		}
		if got := f.run("unshare", ns); got != eperm {
			t.Errorf("unshare(%#x): got %#x, want EPERM", ns, got)
		}
	}
	if got := f.run("unshare", unix.CLONE_NEWTIME); got != eperm {
		t.Errorf("unshare(CLONE_NEWTIME): got %#x", got)
	}
	if got := f.run("unshare", unix.CLONE_FILES|unix.CLONE_FS); got != allow {
		t.Errorf("unshare(CLONE_FILES|CLONE_FS): got %#x, want allow", got)
	}
	// personality: the query and PER_LINUX pass, odd values do not.
	for _, v := range []uint64{0, 8, 0x20000, 0xffffffff} {
		if got := f.run("personality", v); got != allow {
			t.Errorf("personality(%#x): got %#x", v, got)
		}
	}
	for _, v := range []uint64{0x0040000, 0x0400000 /* READ_IMPLIES_EXEC */, 1<<32 | 0} {
		if got := f.run("personality", v); got != eperm {
			t.Errorf("personality(%#x): got %#x, want EPERM", v, got)
		}
	}
	// Sockets: vsock is denied, the usual families and packet sockets pass.
	if got := f.run("socket", unix.AF_VSOCK, unix.SOCK_STREAM); got != eperm {
		t.Errorf("socket(AF_VSOCK): got %#x", got)
	}
	for _, fam := range []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK, unix.AF_PACKET} {
		if got := f.run("socket", fam, unix.SOCK_STREAM); got != allow {
			t.Errorf("socket(%d): got %#x", fam, got)
		}
	}
	// The x32 ABI never reaches the list.
	x32, err := f.vm.Run(seccompData(uint32(arch.X86_64.ID), 0x40000000|arch.X32.SyscallNames["read"]))
	if err != nil || uint32(x32) != enosys {
		t.Errorf("x32 read: got %#x %v, want ENOSYS", x32, err)
	}
}

func TestAllowPtrace(t *testing.T) {
	f := compile(t, Options{Profile: sandbox.SeccompDefault, AllowPtrace: true})
	for _, name := range []string{"ptrace", "process_vm_readv", "kcmp", "pidfd_getfd"} {
		if got := f.run(name); got != allow {
			t.Errorf("%s: got %#x, want allow", name, got)
		}
	}
	if got := f.run("personality", 0x0040000); got != allow {
		t.Errorf("personality(ADDR_NO_RANDOMIZE): got %#x", got)
	}
	if got := f.run("mount"); got != eperm {
		t.Errorf("mount: got %#x", got)
	}
	// The strict profile ignores AllowPtrace.
	s := compile(t, Options{Profile: sandbox.SeccompStrict, AllowPtrace: true})
	if got := s.run("ptrace"); got != eperm {
		t.Errorf("strict ptrace: got %#x", got)
	}
}

func TestStrictProfile(t *testing.T) {
	f := compile(t, Options{Profile: sandbox.SeccompStrict})
	for _, name := range []string{"io_uring_setup", "io_uring_enter", "chroot", "mbind", "set_mempolicy", "mknodat", "mount", "ptrace"} {
		if got := f.run(name); got != eperm {
			t.Errorf("%s: got %#x, want EPERM", name, got)
		}
	}
	for _, fam := range []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK} {
		if got := f.run("socket", fam); got != allow {
			t.Errorf("socket(%d): got %#x", fam, got)
		}
	}
	for _, fam := range []uint64{unix.AF_PACKET, unix.AF_VSOCK, unix.AF_ALG, unix.AF_KEY, 1<<32 | unix.AF_INET} {
		if got := f.run("socket", fam); got != eperm {
			t.Errorf("socket(%#x): got %#x, want EPERM", fam, got)
		}
	}
	if got := f.run("read"); got != allow {
		t.Errorf("read: got %#x", got)
	}
}

func TestUnconfinedAndInvalid(t *testing.T) {
	p, err := Policy("amd64", Options{Profile: sandbox.SeccompUnconfined})
	if err != nil || p != nil {
		t.Fatalf("unconfined: %v %v", p, err)
	}
	if _, err := Policy("amd64", Options{Profile: "bogus"}); err == nil {
		t.Fatal("bogus profile accepted")
	}
	d, err := Denied("amd64", Options{Profile: sandbox.SeccompDefault})
	if err != nil || !slices.Contains(d, "kexec_load") || slices.Contains(d, "read") {
		t.Fatalf("Denied: %v %v", d, err)
	}
}

func TestArchGuard(t *testing.T) {
	raw, err := Program("amd64", Options{Profile: sandbox.SeccompDefault})
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(disassemble(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	run := func(a uint32, name string) uint32 {
		nr := arch.X86_64.SyscallNames[name]
		if a == uint32(arch.I386.ID) {
			nr = arch.I386.SyscallNames[name]
		}
		r, err := vm.Run(seccompData(a, nr))
		if err != nil {
			t.Fatal(err)
		}
		return uint32(r)
	}
	if r := run(uint32(arch.X86_64.ID), "read"); r != allow {
		t.Errorf("native read: %#x", r)
	}
	if r := run(uint32(arch.X86_64.ID), "mount"); r != eperm {
		t.Errorf("native mount: %#x, want EPERM", r)
	}
	// int 0x80: i386 numbers, where the native deny-list does not apply.
	for _, name := range []string{"read", "mount", "unshare"} {
		if r := run(uint32(arch.I386.ID), name); r != enosys {
			t.Errorf("i386 %s: %#x, want ENOSYS", name, r)
		}
	}
	if raw, err := Program("amd64", Options{Profile: sandbox.SeccompUnconfined}); raw != nil || err != nil {
		t.Errorf("unconfined program: %v %v", raw, err)
	}
	_ = libseccomp.ActionAllow
}

func disassemble(t *testing.T, raw []bpf.RawInstruction) []bpf.Instruction {
	insts, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("cannot disassemble the program")
	}
	return insts
}
