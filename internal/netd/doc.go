// Package netd runs and reaches the network daemon: one process per data
// root (agentkernel-server net) that serves the network of every sandbox
// with network on. A backend hands it a sandbox's interface (a TAP
// device's file, passed over a unix socket) with the sandbox's egress
// rules and published ports; the daemon serves it (package netstack)
// until the sandbox is gone, takes new rules for it at any time, and
// writes refused connections to the sandbox's audit log.
//
// One daemon rather than one helper per sandbox: an idle sandbox then
// costs its stack's memory, not a process's. The daemon starts with the
// first sandbox that needs it and leaves a while after the last is gone.
//
// This package holds the protocol, the client, and the daemon's loop; the
// stacks themselves come from the caller (Serve's Factory), so that the
// CLI, which only needs the client, does not link the network stack.
package netd
