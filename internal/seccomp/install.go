//go:build linux

package seccomp

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

//go:generate go test ./policy -run TestProgramsUpToDate -update

// Filters are assembled at build time where prebuilt ones exist
// (programs_amd64.go, written by go generate from package policy), so no
// process pays for assembling them or for the assembler's syscall tables;
// elsewhere (assemble_other.go) they are assembled when installed.

// Install loads the filter o selects on the calling thread (and sets
// no_new_privs, which loading a filter without CAP_SYS_ADMIN requires).
// The caller locks the thread and execs from it: the filter is per thread
// until exec. The unconfined profile installs nothing.
func Install(o Options) error {
	prog, err := Program(o)
	if err != nil || prog == nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("seccomp: setting no_new_privs: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return fmt.Errorf("seccomp: loading the filter: %w", e)
	}
	return nil
}

// Program returns the filter o selects on this architecture (nil for the
// unconfined profile).
func Program(o Options) ([]unix.SockFilter, error) {
	v, err := o.Variant()
	if err != nil || v == "" {
		return nil, err
	}
	return program(v, o)
}

// Supported reports whether the kernel can load seccomp filters.
func Supported() bool {
	_, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
	return !errors.Is(err, unix.EINVAL)
}
