// Package qemu drives QEMU's microvm machine for the microvm backend: it
// builds the command line from a Config (only the devices a sandbox
// needs, on virtio-mmio), starts QEMU in a session of its own so the VM
// outlives the command that started it, controls it over QMP, and finds
// it again from any later process through the pid file in its directory
// (checked against the process's command line, since pids are reused).
//
// Acceleration is chosen by ProbeKVM, never by the mere presence of
// /dev/kvm: a host can offer /dev/kvm without hardware virtualisation
// (PVM), and stock guest kernels never boot there.
//
// Host side; imports no backend.
package qemu
