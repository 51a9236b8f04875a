package firecracker

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// Disk is a block device of the VM, a virtio-blk device in the order
// given: with no root device, the guest sees them as vda, vdb, ...
// None is the root device, so Firecracker adds no root= to the kernel
// command line: the guest boots from its initrd and the agent mounts
// the disks.
type Disk struct {
	Path     string
	ReadOnly bool
	// ID names the drive in Firecracker's API (letters, digits and '_');
	// empty means "disk<i>".
	ID string
}

// NIC is the VM's network interface, a virtio-net device backed by a
// host TAP device. Firecracker opens the TAP by name when the interface
// is configured, so it must exist by then, set up (and owned) by the
// caller; unlike the QEMU driver, Firecracker cannot take a socket.
type NIC struct {
	TapName string
	// MAC is the guest's hardware address, aa:bb:cc:dd:ee:ff; empty lets
	// the guest pick one at random.
	MAC string
}

// Config is one VM.
type Config struct {
	// Binary is Firecracker; empty means firecracker on PATH.
	Binary string
	// Dir holds the VM's runtime files (API socket, vsock socket, pid
	// file, log). Start creates it; it must not hold a running VM.
	Dir string
	// Kernel (an uncompressed vmlinux; bzImage from Firecracker 1.17),
	// Initrd and Cmdline boot the guest. Cmdline is appended to
	// bootArgs.
	Kernel, Initrd, Cmdline string
	VCPUs                   int
	MemoryMiB               int
	Disks                   []Disk
	// NIC, if set, is the VM's one network interface; without it the VM
	// has none.
	NIC *NIC
	// VsockCID, if not 0, gives the VM a virtio-vsock device with this
	// guest CID (3 or more), reached from the host through the hybrid
	// vsock socket VsockSocket(Dir) (see DialAgent). The CID only
	// matters inside the guest: Firecracker's vsock does not go through
	// the host's vhost-vsock, so every VM may use the same one.
	VsockCID uint32
	// Console turns on the guest's serial console (console=ttyS0), which
	// Firecracker writes to its standard output: the log in Dir. Without
	// it the guest has no serial port at all.
	Console bool
}

// The files of a VM's directory.
const (
	apiSocket   = "api.sock"
	vsockSocket = "vsock.sock"
	pidFile     = "firecracker.pid"
	logFile     = "firecracker.log"
)

// APISocket is where Firecracker serves its API for the VM in dir.
func APISocket(dir string) string { return filepath.Join(dir, apiSocket) }

// VsockSocket is the VM's hybrid vsock socket, which DialAgent uses.
func VsockSocket(dir string) string { return filepath.Join(dir, vsockSocket) }

// Log is where Firecracker's output (and with Config.Console the
// guest's console) goes.
func Log(dir string) string { return filepath.Join(dir, logFile) }

// Limits of what a VM may ask for. The memory floor is what a guest kernel
// and the agent need to boot at all; Firecracker takes 1 to 32 vCPUs.
const (
	minMemoryMiB = 64
	maxVCPUs     = 32
	// maxSocketPath is what fits in sockaddr_un's sun_path with its NUL.
	maxSocketPath = 107
	// maxTapName is IFNAMSIZ less the NUL.
	maxTapName = 15
)

func bad(format string, a ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), errdefs.ErrInvalidArgument)
}

// validateDir checks what both Start and Restore need of cfg.Dir.
func validateDir(dir string) error {
	if dir == "" || !filepath.IsAbs(dir) {
		return bad("VM directory %q must be an absolute path", dir)
	}
	// The longest socket path decides: Firecracker cannot bind past it.
	if p := VsockSocket(dir); len(p) > maxSocketPath {
		return bad("VM directory %q: socket path %s longer than %d bytes", dir, p, maxSocketPath)
	}
	return nil
}

func (c *Config) validate() error {
	if err := validateDir(c.Dir); err != nil {
		return err
	}
	if c.VCPUs < 1 || c.VCPUs > maxVCPUs {
		return bad("vcpus %d: must be 1 to %d", c.VCPUs, maxVCPUs)
	}
	if c.MemoryMiB < minMemoryMiB {
		return bad("memory %d MiB: at least %d MiB", c.MemoryMiB, minMemoryMiB)
	}
	if c.Kernel == "" {
		return bad("a kernel is required")
	}
	for _, f := range []struct{ what, path string }{{"kernel", c.Kernel}, {"initrd", c.Initrd}} {
		if f.path == "" {
			continue
		}
		// Firecracker opens paths relative to its own working directory:
		// only absolute paths mean the same to it and to the caller.
		if !filepath.IsAbs(f.path) {
			return bad("%s %q must be an absolute path", f.what, f.path)
		}
		if st, err := os.Stat(f.path); err != nil {
			return bad("%s %s: %v", f.what, f.path, err)
		} else if !st.Mode().IsRegular() {
			return bad("%s %s: not a regular file", f.what, f.path)
		}
	}
	ids := map[string]bool{}
	for i, d := range c.Disks {
		if !filepath.IsAbs(d.Path) {
			return bad("disk %d: path %q must be absolute", i, d.Path)
		}
		if _, err := os.Stat(d.Path); err != nil {
			return bad("disk %d: %v", i, err)
		}
		id := c.driveID(i)
		if !validID(id) {
			return bad("disk %d: id %q (letters, digits and '_' only)", i, id)
		}
		if ids[id] {
			return bad("disk %d: id %q used twice", i, id)
		}
		ids[id] = true
	}
	if c.NIC != nil {
		if t := c.NIC.TapName; t == "" || len(t) > maxTapName || strings.ContainsAny(t, "/ \t\n:") {
			return bad("network interface TAP name %q", t)
		}
		if c.NIC.MAC != "" {
			if hw, err := net.ParseMAC(c.NIC.MAC); err != nil || len(hw) != 6 || len(c.NIC.MAC) != 17 {
				return bad("network interface MAC %q: want aa:bb:cc:dd:ee:ff", c.NIC.MAC)
			}
		}
	}
	// 0 to 2 are the hypervisor, local and host CIDs; ^0 is "any".
	if c.VsockCID != 0 && (c.VsockCID < 3 || c.VsockCID == ^uint32(0)) {
		return bad("vsock CID %d: must be 3 or more", c.VsockCID)
	}
	return nil
}

// driveID is disk i's id in the API.
func (c *Config) driveID(i int) string {
	if id := c.Disks[i].ID; id != "" {
		return id
	}
	return fmt.Sprintf("disk%d", i)
}

// validID is what Firecracker accepts as a resource id in a URL path.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if r != '_' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// bootArgs are on every guest's kernel command line. With boot_args set
// Firecracker uses them instead of its own defaults, so they restate what
// the machine needs: reboot=k turns a guest reboot into a write to the
// i8042 reset line, on which Firecracker exits, and panic=-1 reboots a
// panicked guest at once: a crashed guest is a VM that is gone, not one
// that hangs. pci=off: devices are on virtio-mmio (Firecracker names them
// on the command line itself), there is no PCI bus to probe. The i8042
// options skip probing for devices the emulated controller does not have,
// and quiet keeps the console (when there is one) from slowing the boot.
const bootArgs = "reboot=k panic=-1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd quiet"

// kernelCmdline is bootArgs, the console choice, then c.Cmdline.
func (c *Config) kernelCmdline() string {
	args := []string{bootArgs}
	if c.Console {
		args = append(args, "console=ttyS0")
	} else {
		// No UART at all: nothing for the guest to probe or write to.
		args = append(args, "8250.nr_uarts=0")
	}
	if c.Cmdline != "" {
		args = append(args, c.Cmdline)
	}
	return strings.Join(args, " ")
}
