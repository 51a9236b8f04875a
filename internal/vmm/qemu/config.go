package qemu

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// Accel is how QEMU runs guest code.
type Accel string

const (
	// AccelKVM runs guests on the host's hypervisor: only where ProbeKVM
	// says guests can run under it.
	AccelKVM Accel = "kvm"
	// AccelTCG emulates the CPU in software: slow, and works everywhere.
	AccelTCG Accel = "tcg"
)

// Disk is a block device of the VM, a virtio-blk device in the order
// given (the first is the guest's vda).
type Disk struct {
	Path     string
	ReadOnly bool
	// Serial is the serial number the guest reads from the disk
	// (/sys/block/vdX/serial): device names follow probe order, serials
	// say which disk is which.
	Serial string
}

// NIC is the VM's network interface: a virtio-net device whose frames go,
// one per datagram, through File, a connected datagram or seqpacket
// socket whose other end serves the network (package netstack).
type NIC struct {
	File *os.File
	// MAC is the guest's hardware address, aa:bb:cc:dd:ee:ff.
	MAC string
}

// nicFD is the NIC's descriptor in QEMU: the first of its extra files.
const nicFD = 3

// Config is one VM.
type Config struct {
	// Binary is QEMU; empty means qemu-system-x86_64 on PATH.
	Binary string
	// Dir holds the VM's runtime files (sockets, pid file, log). Start
	// creates it; it must not hold a running VM.
	Dir string
	// Kernel, Initrd and Cmdline boot the guest directly. Without a
	// kernel the VM runs its firmware only (tests, and a VM that will
	// be restored from a snapshot).
	Kernel, Initrd, Cmdline string
	VCPUs                   int
	MemoryMiB               int
	Accel                   Accel
	Disks                   []Disk
	// NIC, if set, is the VM's one network interface; without it the VM
	// has none.
	NIC *NIC
	// AgentPort names the virtio-serial ports the guest's agent listens
	// on ("NAME.0", "NAME.1", ...); DialAgent reaches a free one. Empty:
	// no port.
	AgentPort string
	// AgentPorts is how many (default 4). A port carries one connection
	// at a time, so this many processes can talk to the agent at once;
	// each multiplexes its calls over its connection.
	AgentPorts int
	// Paused starts the VM without running it (QEMU's -S).
	Paused bool
	// Incoming restores the VM from a state file VM.Save wrote, instead
	// of booting it: Start returns once it runs again. The rest of the
	// config must be the saved VM's.
	Incoming string
	// Console writes the guest's serial console to ConsoleLog(Dir), for
	// boot diagnostics (the guest must be told console=ttyS0); without
	// it the machine has no serial port at all.
	Console bool
}

// The files of a VM's directory.
const (
	qmpSocket   = "qmp.sock"
	agentSocket = "agent-%d.sock"
	ctlSocket   = "ctl.sock"
	agentLock   = "agent-%d.lock"
	pidFile     = "qemu.pid"
	logFile     = "qemu.log"
	consoleFile = "console.log"
)

// ConsoleLog is where the guest's console goes, with Config.Console.
func ConsoleLog(dir string) string { return filepath.Join(dir, consoleFile) }

// AgentSocket is where the host connects to the guest agent's port i.
func AgentSocket(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf(agentSocket, i)) }

// defaultAgentPorts: the server, a pool maintainer and a couple of CLI
// commands at once.
const defaultAgentPorts = 4

// maxAgentPorts is what one virtio-serial device offers, less port 0
// (reserved for a console) and the control port.
const maxAgentPorts = 29

// Limits of what a VM may ask for. The memory floor is what a guest kernel
// and the agent need to boot at all.
const (
	minMemoryMiB = 64
	maxVCPUs     = 255
)

func (c *Config) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), errdefs.ErrInvalidArgument)
	}
	if c.Dir == "" || !filepath.IsAbs(c.Dir) {
		return bad("VM directory %q must be an absolute path", c.Dir)
	}
	if c.VCPUs < 1 || c.VCPUs > maxVCPUs {
		return bad("vcpus %d: must be 1 to %d", c.VCPUs, maxVCPUs)
	}
	if c.MemoryMiB < minMemoryMiB {
		return bad("memory %d MiB: at least %d MiB", c.MemoryMiB, minMemoryMiB)
	}
	switch c.Accel {
	case AccelKVM, AccelTCG:
	default:
		return bad("accelerator %q: want kvm or tcg", c.Accel)
	}
	if c.Kernel == "" && (c.Initrd != "" || c.Cmdline != "") {
		return bad("an initrd or kernel command line needs a kernel")
	}
	for _, f := range []struct{ what, path string }{{"kernel", c.Kernel}, {"initrd", c.Initrd}} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			return bad("%s %s: %v", f.what, f.path, err)
		} else if !st.Mode().IsRegular() {
			return bad("%s %s: not a regular file", f.what, f.path)
		}
	}
	for i, d := range c.Disks {
		if _, err := os.Stat(d.Path); err != nil {
			return bad("disk %d: %v", i, err)
		}
		// QEMU's option syntax: a comma inside a value must be doubled;
		// refuse rather than escape, such paths are never ours.
		if strings.Contains(d.Path, ",") {
			return bad("disk %d: path %q contains a comma", i, d.Path)
		}
		if strings.ContainsAny(d.Serial, ",= ") || len(d.Serial) > 20 {
			return bad("disk %d: serial %q (at most 20 characters, no comma, '=' or space)", i, d.Serial)
		}
	}
	if c.NIC != nil {
		if c.NIC.File == nil {
			return bad("network interface without a socket")
		}
		if hw, err := net.ParseMAC(c.NIC.MAC); err != nil || len(hw) != 6 {
			return bad("network interface MAC %q", c.NIC.MAC)
		}
	}
	if c.Incoming != "" {
		if err := checkStatePath(c.Incoming); err != nil {
			return err
		}
		if st, err := os.Stat(c.Incoming); err != nil || !st.Mode().IsRegular() {
			return bad("VM state file %s: not a regular file", c.Incoming)
		}
	}
	if strings.Contains(c.Dir, ",") {
		return bad("VM directory %q contains a comma", c.Dir)
	}
	if strings.ContainsAny(c.AgentPort, ",= ") {
		return bad("agent port name %q", c.AgentPort)
	}
	if c.AgentPorts < 0 || c.AgentPorts > maxAgentPorts {
		return bad("agent ports %d: at most %d", c.AgentPorts, maxAgentPorts)
	}
	return nil
}

// Args is QEMU's command line for c, after validating it.
//
// The machine is microvm with no default devices, no firmware tables the
// guest does not need, and virtio-mmio transports only: the smallest
// device model QEMU offers, which is both the fastest to boot and the
// least attack surface. Devices are only those c asks for.
func (c *Config) Args() ([]string, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	serial, machine := []string{"-serial", "none"}, ",isa-serial=off"
	if c.Console {
		serial, machine = []string{"-serial", "file:" + ConsoleLog(c.Dir)}, ""
	}
	args := []string{
		"-M", "microvm,accel=" + string(c.Accel) + machine,
		"-cpu", cpuModel(c.Accel),
		"-smp", strconv.Itoa(c.VCPUs),
		"-m", strconv.Itoa(c.MemoryMiB) + "M",
		"-nodefaults", "-no-user-config", "-nographic", "-display", "none",
		"-monitor", "none", "-parallel", "none",
		"-no-reboot",
		"-qmp", "unix:" + filepath.Join(c.Dir, qmpSocket) + ",server=on,wait=off",
		// The guest's RNG seeds from the host's at boot and after every
		// restore, so two VMs never share random state.
		"-object", "rng-random,id=rng0,filename=/dev/urandom",
		"-device", "virtio-rng-device,rng=rng0",
	}
	if c.Kernel != "" {
		args = append(args, "-kernel", c.Kernel, "-append", c.kernelCmdline())
		if c.Initrd != "" {
			args = append(args, "-initrd", c.Initrd)
		}
	}
	for i, d := range c.Disks {
		drive := fmt.Sprintf("if=none,id=disk%d,file=%s,format=raw", i, d.Path)
		if d.ReadOnly {
			drive += ",readonly=on"
		}
		dev := fmt.Sprintf("virtio-blk-device,drive=disk%d", i)
		if d.Serial != "" {
			dev += ",serial=" + d.Serial
		}
		args = append(args, "-drive", drive, "-device", dev)
	}
	if c.NIC != nil {
		args = append(args,
			"-netdev", fmt.Sprintf("dgram,id=net0,local.type=fd,local.str=%d", nicFD),
			"-device", "virtio-net-device,netdev=net0,mac="+c.NIC.MAC)
	}
	if c.AgentPort != "" {
		n := c.agentPorts()
		args = append(args, "-device", fmt.Sprintf("virtio-serial-device,max_ports=%d", n+2))
		for i := range n {
			args = append(args,
				"-chardev", fmt.Sprintf("socket,id=agent%d,path=%s,server=on,wait=off", i, AgentSocket(c.Dir, i)),
				"-device", fmt.Sprintf("virtserialport,chardev=agent%d,name=%s.%d,nr=%d", i, c.AgentPort, i, i+1),
			)
		}
		// The guest's init serves the control port (v1.Identity).
		args = append(args,
			"-chardev", fmt.Sprintf("socket,id=ctl,path=%s,server=on,wait=off", filepath.Join(c.Dir, ctlSocket)),
			"-device", fmt.Sprintf("virtserialport,chardev=ctl,name=%s.0,nr=%d", v1.ControlPort, n+1),
		)
	}
	if c.Paused {
		args = append(args, "-S")
	}
	if c.Incoming != "" {
		args = append(args, "-incoming", "exec:cat "+shellQuote(c.Incoming))
	}
	return append(args, serial...), nil
}

func (c *Config) agentPorts() int {
	if c.AgentPorts == 0 {
		return defaultAgentPorts
	}
	return c.AgentPorts
}

// bootArgs are on every guest's kernel command line. panic=-1 restarts a
// panicked guest at once, which -no-reboot turns into QEMU's exit: a
// crashed guest is a VM that is gone, not one that hangs. The machine has
// no PS/2 controller, no legacy timer check is worth its wait in a VM, and
// quiet keeps the console (when there is one) from slowing the boot.
const bootArgs = "panic=-1 no_timer_check i8042.noaux i8042.nokbd i8042.nopnp i8042.dumbkbd quiet"

// kernelCmdline is bootArgs, what the machine needs, then c.Cmdline.
func (c *Config) kernelCmdline() string {
	args := []string{bootArgs}
	if c.Console {
		args = append(args, "console=ttyS0")
	}
	// Under emulation the guest's TSC runs at the host's rate, and the
	// kernel measures it against the emulated PIT: on a busy host that
	// measurement fails now and then, and the boot hangs for want of a
	// clock. Telling the kernel the rate skips the measurement.
	if khz := hostTSCkHz(); c.Accel == AccelTCG && khz > 0 {
		args = append(args, "tsc_early_khz="+strconv.Itoa(khz))
	}
	if c.Cmdline != "" {
		args = append(args, c.Cmdline)
	}
	return strings.Join(args, " ")
}

// cpuModel is the guest CPU: the host's own under KVM; under emulation,
// QEMU's "max", whose features the emulator implements.
func cpuModel(a Accel) string {
	if a == AccelKVM {
		return "host"
	}
	return "max"
}
