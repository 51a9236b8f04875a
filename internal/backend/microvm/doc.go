// Package microvm is the microVM backend: every sandbox is a virtual
// machine with its own Linux kernel, run by QEMU's microvm machine
// (package vmm/qemu), with agentkernel-agent as the guest's init.
//
// What a VM boots comes from `agentkernel setup` (package guest, in
// agentkernel-server): a kernel and a base initramfs holding the kernel's
// virtio modules and a busybox userland, in <root>/microvm/guest. At start
// the backend appends the agent to that initramfs as /init (a second cpio
// segment, cached per agent binary), so upgrading agentkernel never needs
// a new guest.
//
// The root filesystem is an overlay the agent mounts in the guest: each
// image layer is a read-only ext4 disk, built once per layer (by chain ID)
// and shared by every VM whose image has that layer; the sandbox's own
// changes go to a sparse ext4 disk of its own, kept across stop and start.
// The host pseudo-image cannot be shared with a VM, so it stands for the
// guest's busybox userland there. The agent is reached over virtio-serial
// ports on unix sockets in the VM's directory.
//
// Host side. It imports the sandbox model, the VMM driver and the agent
// protocol, never another backend.
package microvm
