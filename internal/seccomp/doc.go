// Package seccomp builds and installs the seccomp-bpf filter of the native
// backend's sandboxes: a deny-list in the spirit of Docker's default profile
// ("default"), a stricter one for the restrictive profile ("strict"), or
// none ("unconfined"). Denied system calls fail with EPERM (clone3 with
// ENOSYS, so libc falls back to clone, whose flags the filter can inspect);
// everything else is allowed. System calls of any ABI other than the
// native one (i386 via int 0x80, x32) fail with ENOSYS, so a deny-list
// keyed on native syscall numbers cannot be bypassed through another ABI.
//
// The policies are declared in package policy and assembled there by
// elastic/go-seccomp-bpf at build time (go generate writes
// programs_amd64.go; architectures without prebuilt filters assemble them
// when installing). Install runs in the native backend's init stage,
// inside the sandbox's namespaces, on the OS thread that then execs the
// agent. The package imports the sandbox model for the profile names and
// errdefs, nothing else of the project.
//
// What each profile denies (beyond what the missing capabilities already
// prevent):
//
//   - default: mount and the new mount API, pivot_root, setns, unshare and
//     clone with namespace flags, clone3, kexec, module loading, reboot,
//     swap, acct, clock setting, iopl/ioperm, quotactl, file handles,
//     bpf, perf_event_open, userfaultfd, fanotify, the keyring, syslog,
//     vhangup, obsolete calls, personality other than the usual values,
//     AF_VSOCK sockets (not namespaced: they reach the hypervisor), and
//     ptrace, process_vm_*, kcmp, pidfd_getfd unless ptrace is allowed;
//   - strict: also io_uring, chroot, NUMA memory policy calls,
//     process_madvise, mknod, ptrace regardless, and sockets other than
//     unix, inet, inet6 and netlink.
package seccomp
