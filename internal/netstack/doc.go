// Package netstack is the host side of a sandbox's network: a userspace
// TCP/IP stack (gVisor's netstack) serving the sandbox's interface — a TAP
// device's file for the native backend (made by package nettap), a
// virtio-net stream for microVMs — and terminating every connection the
// sandbox makes. Each one is decided by the sandbox's policy (package
// netpolicy) by address, and again by the name its first bytes ask for
// (TLS SNI, HTTP Host), and only then dialled from the host. DNS goes to
// the stack's resolver, which refuses names the policy refuses; DNS to
// anywhere else is refused. Refusals are reported for the audit log.
//
// Why a userspace stack rather than veth and nftables NAT: it works the
// same with and without root, for a network namespace and for a VMM's
// virtio-net backend alike, nothing is added to the host's network
// configuration (nothing can leak when a process dies), and every
// connection passes through code that can read its name — which kernel
// NAT cannot do, and the policy needs.
//
// Host side; links gVisor, so only agentkernel-server imports it.
package netstack
