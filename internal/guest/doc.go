// Package guest prepares what a microVM sandbox boots: a Linux kernel and a
// base initramfs, made once by agentkernel setup (Prepare) and found again
// by the backend (LoadGuest).
//
// The kernel is Debian's cloud kernel (linux-image-cloud-amd64), fetched with
// apt-get download and unpacked with dpkg-deb -x, so no root and no package
// installation on the host are needed. That kernel builds its virtio
// drivers, virtio-mmio transport, overlayfs and vsock as loadable modules
// rather than built-ins, so a guest that has only the kernel image cannot
// even see its disks or the agent's channel. The initramfs therefore carries
// the module closure the microvm machine needs (DefaultModules), plus a list
// of them in load order at /etc/agentkernel/modules, which the agent loads
// with finit_module before doing anything else: there is no modprobe, udev
// or depmod in the guest.
//
// The Debian package ships no modules.dep (depmod runs in its postinst), and
// the host need not have kmod installed, so Modules falls back to reading
// each module's .modinfo section to learn its dependencies.
//
// The base initramfs is also a minimal root filesystem (Userland): static
// busybox from Debian's busybox-static with its applet links and a few
// files in /etc. A sandbox on the "host" pseudo-image runs in it, since a
// microVM cannot share the host's userland.
//
// The base has no /init. The backend appends, at each start, a second,
// uncompressed newc archive holding only /init, the agent binary of the
// running agentkernel; the kernel unpacks concatenated archives in order,
// so the agent never has to be rebuilt into the base. The appended archive
// must start at a 4-byte offset: the kernel looks for a cpio header after a
// compressed archive only at such offsets, skipping zero bytes to reach
// one, so the base is padded with zeros.
//
// Where the kernel carries a PVH entry point, Prepare also extracts the
// uncompressed ELF kernel from the bzImage (ExtractVmlinux): QEMU boots it
// directly, and the guest runs no decompressor, which under software
// emulation is a sizeable part of a boot.
//
// Host side only; the guest side (init mode of the agent) lives elsewhere.
// It must not import the agent or any backend.
package guest
