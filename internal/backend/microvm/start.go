//go:build linux

package microvm

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/nettap"
	"github.com/agentkernel-go/agentkernel/internal/procfs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/vmm/qemu"
)

// bootTimeout bounds a boot, from QEMU's start to the agent's answer.
// Under software emulation a boot takes seconds, more on a loaded host.
const bootTimeout = 2 * time.Minute

// Start boots the sandbox's VM and returns once its agent answers.
func (b *Backend) Start(ctx context.Context, spec *sandbox.Spec) (rt *sandbox.Runtime, err error) {
	if err := b.Probe(ctx); err != nil {
		return nil, err
	}
	if err := supported(spec); err != nil {
		return nil, err
	}
	initrd, err := b.initrd()
	if err != nil {
		return nil, err
	}
	disk := filepath.Join(spec.Dir, diskName)
	_, statErr := os.Stat(disk)
	first := errors.Is(statErr, os.ErrNotExist) // the sandbox's disk is made, kept from then on
	if first {
		defer func() {
			if rt == nil {
				os.Remove(disk)
			}
		}()
	}
	disks := []qemu.Disk{{Path: disk, Serial: v1.UpperSerial}}
	var ex extra
	if spec.RootFS.Image != sandbox.DefaultImage {
		for _, lower := range spec.RootFS.Lowers {
			if emptyDir(lower) {
				continue // adds nothing (the store's shared empty layer)
			}
			p, err := layerDisk(ctx, b.layerCache(), lower)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", spec.RootFS.Image, err)
			}
			disks = append(disks, qemu.Disk{Path: p, ReadOnly: true, Serial: v1.LayerSerial(len(ex.Layers))})
			ex.Layers = append(ex.Layers, strings.TrimSuffix(filepath.Base(p), ".ext4"))
		}
		if len(ex.Layers) == 0 {
			return nil, fmt.Errorf("image %s has no files to boot a VM with: %w", spec.RootFS.Image, errdefs.ErrInvalidArgument)
		}
	}
	ex.Accel, _ = qemu.ChooseAccel()
	boot := bootConfig(spec, len(ex.Layers))
	var nic *qemu.NIC
	var netEnd *os.File
	if spec.Config.Network == sandbox.NetworkNAT {
		if nic, netEnd, err = newNIC(); err != nil {
			return nil, err
		}
		defer nic.File.Close() // QEMU has its own copy once started
		defer func() {
			if netEnd != nil {
				netEnd.Close()
			}
		}()
		boot.Addrs = []netip.Prefix{nettap.Guest4, nettap.Guest6}
		boot.Gateways = []netip.Addr{nettap.Gateway4, nettap.Gateway6}
		boot.DNS = []netip.Addr{nettap.DNS4, nettap.DNS6}
		boot.MTU = nettap.MTU
	}
	cfg := qemu.Config{
		Binary:    b.opts.QEMU,
		Dir:       vmDir(spec),
		Kernel:    b.kernel(),
		Initrd:    initrd,
		Cmdline:   boot.Cmdline(),
		VCPUs:     spec.Config.VCPUs,
		MemoryMiB: spec.Config.MemoryMB,
		Accel:     ex.Accel,
		Disks:     disks,
		NIC:       nic,
		AgentPort: agentPort,
		Console:   true,
	}
	// A first start restores the configuration's template if there is
	// one; otherwise it boots, and the boot becomes the template.
	keyBoot := boot
	keyBoot.Hostname = ""
	keyCfg := cfg
	keyCfg.Cmdline = keyBoot.Cmdline()
	key := templateKey(&keyCfg)
	var vm *qemu.VM
	restored := false
	if first {
		if vm, restored, err = b.restore(ctx, &cfg, key, spec.Name); err != nil {
			// A template that does not restore is made again.
			b.log.Warn("microVM template unusable, booting", "template", key, "err", err)
			os.RemoveAll(b.templateDir(key))
		}
	}
	if !restored {
		if first {
			if err := upperDisk(ctx, disk, b.opts.DiskMiB); err != nil {
				return nil, err
			}
		}
		if vm, err = qemu.Start(ctx, cfg); err != nil {
			qemu.Remove(cfg.Dir)
			return nil, fmt.Errorf("starting the VM of sandbox %q: %w", spec.Name, err)
		}
	}
	defer vm.Close()
	fail := func(err error) (*sandbox.Runtime, error) {
		vm.Kill()
		qemu.Remove(cfg.Dir)
		return nil, err
	}
	rt = &sandbox.Runtime{PID: vm.Pid()}
	if netEnd != nil {
		// The network path serves the NIC's other end until QEMU exits.
		pidfd, err := unix.PidfdOpen(vm.Pid(), 0)
		if err != nil {
			return fail(fmt.Errorf("QEMU pidfd: %w", err))
		}
		end := netEnd
		netEnd = nil // the attacher owns it now, also on error
		rt.Ports, err = spec.Network.AttachTAP(ctx, end, os.NewFile(uintptr(pidfd), "pidfd"))
		if err != nil {
			return fail(fmt.Errorf("network of sandbox %q: %w", spec.Name, err))
		}
	}
	if err := waitAgent(ctx, vm, cfg.Dir); err != nil {
		return fail(fmt.Errorf("booting sandbox %q: %w", spec.Name, err))
	}
	if first && !restored {
		if err := b.saveTemplate(ctx, vm, &cfg, key); err != nil {
			b.log.Warn("saving the microVM template", "template", key, "err", err)
		}
	}
	ex.Restored = restored
	if _, rt.StartTime, err = procfs.Stat(vm.Pid()); err != nil {
		return fail(fmt.Errorf("QEMU process: %w", err))
	}
	if rt.Extra, err = json.Marshal(ex); err != nil {
		return fail(err)
	}
	return rt, nil
}

// emptyDir tells a directory with no entries.
func emptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return errors.Is(err, io.EOF)
}

// newNIC makes the VM's network interface: a pair of connected seqpacket
// sockets, one for QEMU's virtio-net device and one for the network path,
// each Ethernet frame a message. The MAC is random, as a VM's identity.
func newNIC() (*qemu.NIC, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("network interface: %w", err)
	}
	mac := []byte{0x52, 0x54, 0x00, 0, 0, 0}
	rand.Read(mac[3:])
	return &qemu.NIC{File: os.NewFile(uintptr(fds[0]), "nic"), MAC: net.HardwareAddr(mac).String()},
		os.NewFile(uintptr(fds[1]), "nic-net"), nil
}

// supported refuses what the backend cannot do yet, rather than start a
// sandbox without it.
func supported(spec *sandbox.Spec) error {
	c := &spec.Config
	if c.Network == sandbox.NetworkNAT && spec.Network == nil {
		return fmt.Errorf("microvm: network access without a network path: %w", errdefs.ErrUnavailable)
	}
	if len(c.Mounts) > 0 {
		return fmt.Errorf("microvm: host directory mounts are not yet supported: %w", errdefs.ErrNotImplemented)
	}
	return nil
}

// waitAgent waits until the guest's agent answers on one of its ports: the
// session sync that opens every connection is answered by the agent only
// once it serves. A VM that dies or hangs on the way is reported with the
// end of its console.
func waitAgent(ctx context.Context, vm *qemu.VM, dir string) error {
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	go func() {
		select {
		case <-vm.Exited():
			cancel()
		case <-ctx.Done():
		}
	}()
	c, err := qemu.DialAgent(ctx, dir)
	if err == nil {
		return c.Close()
	}
	select {
	case <-vm.Exited():
		err = errors.New("the VM exited")
	default:
	}
	return fmt.Errorf("%w%s", err, consoleTail(dir))
}

// consoleTail is the end of a VM's console, for errors.
func consoleTail(dir string) string {
	b, err := os.ReadFile(qemu.ConsoleLog(dir))
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return "; the guest's console ends:\n  " + strings.Join(lines, "\n  ")
}
