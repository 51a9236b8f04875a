// Package agent is agentkernel-agent: the server that runs inside every
// sandbox (as PID 1 / init in the native backend and in microVMs, as the
// entrypoint in containers) and carries out exec, PTY, detached processes and
// file operations for the host over the v1 agent protocol
// (api/agent/v1/PROTOCOL.md).
//
// In a microVM the agent is also the guest's init (vminit.go, vmroot.go):
// it loads the kernel's modules, builds the sandbox's root from its disks,
// locks the kernel down, serves the control port (vmcontrol.go), and runs
// the serving agent confined in namespaces of its own (vmsandbox.go).
//
// Agent side. It imports only the standard library, golang.org/x/sys,
// api/agent/v1 and the small x/sys-only packages it shares with the host
// (internal/xattr, internal/netif, internal/caps) — never a host package —
// so the binary stays small and static.
package agent
