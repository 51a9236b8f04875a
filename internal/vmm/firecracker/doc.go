// Package firecracker drives Firecracker microVMs, the sibling of package
// qemu for hosts with hardware KVM.
//
// Firecracker starts with nothing but a REST API on a unix socket in the
// VM's directory; the machine is then described one request per part
// (machine-config, boot-source, each drive, the network interface, the
// vsock device) and booted with an InstanceStart action, or restored from
// a snapshot by a single load request. Like QEMU it runs in a session of
// its own, so the VM outlives the command that started it, and any later
// process finds it again through the pid file in its directory (checked
// against the process's command line, since pids are reused).
//
// The agent is reached over Firecracker's hybrid vsock: a unix socket on
// the host where each connection names a guest port ("CONNECT <port>\n")
// and becomes a stream to whatever listens there in the guest. See
// DialAgent.
//
// The microvm backend (internal/backend/microvm) is to choose this driver
// when Probe says Firecracker can run here; that is not wired yet.
//
// Host side; imports no backend, and of the other VMM drivers only
// qemu's KVM probe.
package firecracker
