// Package agent is agentkernel-agent: the server that runs inside every
// sandbox (as PID 1 / init in the native backend and in microVMs, as the
// entrypoint in containers) and carries out exec, PTY, detached processes and
// file operations for the host over the v1 agent protocol
// (api/agent/v1/PROTOCOL.md).
//
// Agent side. It imports only the standard library, golang.org/x/sys/unix,
// api/agent/v1 and internal/xattr (shared with the host, imports only x/sys)
// — never a host package — so the binary stays small and static.
package agent
