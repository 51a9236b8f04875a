// Package guest prepares what a microVM sandbox boots: a Linux kernel and an
// initramfs whose /init is agentkernel-agent.
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
// Host side only; the guest side (init mode of the agent) lives elsewhere.
package guest
