//go:build linux

// Package caps limits the capabilities of a sandbox's init: what sandbox
// root keeps whatever the backend (a native sandbox's user namespace, a
// microVM's guest). It links only golang.org/x/sys, so the in-sandbox
// agent may use it.
package caps

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Default is what sandbox root keeps: Docker's default set without
// CAP_SYS_CHROOT (the conformance suite requires chroot to fail in every
// profile; nothing an agent runs needs it). Enough to own files and switch
// users, nothing that reaches the kernel, devices, raw sockets or other
// processes' memory.
var Default = []int{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FOWNER, unix.CAP_FSETID, unix.CAP_KILL,
	unix.CAP_SETGID, unix.CAP_SETUID, unix.CAP_SETPCAP, unix.CAP_NET_BIND_SERVICE,
	unix.CAP_SETFCAP, unix.CAP_AUDIT_WRITE,
}

// Strict is the restrictive profile's set: what the agent needs to manage
// files and run commands as other users, no more.
var Strict = []int{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FOWNER, unix.CAP_KILL, unix.CAP_SETGID, unix.CAP_SETUID,
}

// Limit removes every capability not in keep from the bounding set (so no
// later exec regains it), clears the ambient and inheritable sets, and
// limits this thread's own sets to keep. Root exec'ing the agent then gets
// exactly keep. Call it on a locked OS thread that then execs, or before
// the process starts other threads.
func Limit(keep []int) error {
	var mask uint64
	for _, c := range keep {
		mask |= 1 << c
	}
	last := unix.CAP_LAST_CAP
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = n
		}
	}
	for c := 0; c <= last; c++ {
		if mask&(1<<c) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	for i := range data {
		m := uint32(mask >> (32 * i))
		data[i].Effective &= m
		data[i].Permitted &= m
		data[i].Inheritable = 0
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}
