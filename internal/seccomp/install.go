//go:build linux

package seccomp

import (
	"fmt"
	"unsafe"

	libseccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Install sets no_new_privs and loads the filter for o on the calling
// thread only (no TSYNC): the caller holds runtime.LockOSThread and execs
// right after, so the filter passes to the new program. The unconfined
// profile installs nothing.
func Install(o Options) error {
	raw, err := Program(o)
	if err != nil || raw == nil {
		return err
	}
	if err := libseccomp.SetNoNewPrivs(); err != nil {
		return fmt.Errorf("seccomp: setting no_new_privs: %w", err)
	}
	if err := loadRaw(raw); err != nil {
		return fmt.Errorf("seccomp: loading the filter: %w", err)
	}
	return nil
}

// Program returns the complete filter for o as raw BPF (nil for the
// unconfined profile): an architecture guard, then the library's
// assembly of the policy. One filter instead of two halves the kernel's
// work at load time.
//
// The guard fails every system call made through an ABI other than the
// native one with ENOSYS: the deny-list is keyed on native syscall
// numbers, and the library's program lets foreign architectures through
// to its default action (allow), so int 0x80 would bypass it.
func Program(o Options) ([]bpf.RawInstruction, error) {
	p, err := Policy(o)
	if err != nil || p == nil {
		return nil, err
	}
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, err
	}
	insts, err := p.Assemble()
	if err != nil {
		return nil, fmt.Errorf("seccomp: assembling the policy: %w", err)
	}
	raw, err := bpf.Assemble(append(archGuardProgram(uint32(info.ID)), insts...))
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	return raw, nil
}

// archGuardProgram lets the native architecture fall through to the
// instructions that follow and fails any other with ENOSYS.
func archGuardProgram(native uint32) []bpf.Instruction {
	const archOffset = 4 // struct seccomp_data { int nr; __u32 arch; ... }
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: archOffset, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: native, SkipTrue: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
	}
}

func loadRaw(raw []bpf.RawInstruction) error {
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog)))
	if e != 0 {
		return e
	}
	return nil
}

// Supported reports whether the kernel can load seccomp filters.
func Supported() bool { return libseccomp.Supported() }
