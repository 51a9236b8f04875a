//go:build linux

package microvm

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/vmm/qemu"
)

// Options configure the backend.
type Options struct {
	// AgentPath is the agentkernel-agent binary, the guest's init.
	AgentPath string
	// Root is the data root: the guest lives in <Root>/microvm/guest, the
	// layer disks and initramfs images in <Root>/microvm/cache.
	Root string
	// QEMU is the QEMU binary; empty means qemu-system-x86_64 on PATH.
	QEMU string
	// DiskMiB is the size of each sandbox's writable disk (sparse: it
	// costs what is written). Zero means 8 GiB.
	DiskMiB int
	Logger  *slog.Logger
}

// Backend is the microVM backend.
type Backend struct {
	opts Options
	log  *slog.Logger
}

var _ sandbox.Backend = (*Backend)(nil)

// New returns a microVM backend.
func New(opts Options) *Backend {
	if opts.DiskMiB == 0 {
		opts.DiskMiB = 8 << 10
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backend{opts: opts, log: log}
}

// Type is sandbox.MicroVM.
func (b *Backend) Type() sandbox.Type { return sandbox.MicroVM }

// Isolation is sandbox.IsolationVM.
func (b *Backend) Isolation() sandbox.Isolation { return sandbox.IsolationVM }

// Files of the guest, as `agentkernel setup` leaves them (package guest).
const (
	kernelName = "vmlinuz"
	// vmlinuxName is the same kernel uncompressed, where it boots through
	// PVH: preferred, as it skips the guest's decompressor.
	vmlinuxName = "vmlinux"
	initrdName  = "initrd.img"
)

// GuestDir is where `agentkernel setup` puts the guest for data root root.
func GuestDir(root string) string { return filepath.Join(root, "microvm", "guest") }

func (b *Backend) guestFile(name string) string { return filepath.Join(GuestDir(b.opts.Root), name) }
func (b *Backend) cacheDir() string             { return filepath.Join(b.opts.Root, "microvm", "cache") }

// kernel is the kernel the VM boots.
func (b *Backend) kernel() string {
	if p := b.guestFile(vmlinuxName); fileExists(p) {
		return p
	}
	return b.guestFile(kernelName)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Probe checks for QEMU, the guest and the agent. It does not boot
// anything: under software emulation that takes seconds.
func (b *Backend) Probe(ctx context.Context) error {
	if _, err := qemu.Find(b.opts.QEMU); err != nil {
		return fmt.Errorf("%w (install qemu-system-x86): %w", err, errdefs.ErrUnavailable)
	}
	for _, name := range []string{kernelName, initrdName} {
		if _, err := os.Stat(b.guestFile(name)); err != nil {
			return fmt.Errorf("no microVM guest in %s (run `agentkernel setup`): %w", GuestDir(b.opts.Root), errdefs.ErrUnavailable)
		}
	}
	if b.opts.AgentPath == "" {
		return fmt.Errorf("no agentkernel-agent binary: %w", errdefs.ErrUnavailable)
	}
	return nil
}

// AutoSelect keeps detection from choosing microVMs where they are
// emulated: a sandbox then takes seconds to boot, and the user asks for
// that trade with -B microvm.
func (b *Backend) AutoSelect() error {
	if accel, why := qemu.ChooseAccel(); accel != qemu.AccelKVM {
		return fmt.Errorf("software emulation only (%s): choose it with --backend microvm", why)
	}
	return nil
}

// Files the backend keeps in spec.Dir.
const (
	vmDirName = "vm"        // the running VM's sockets, pid file and log
	diskName  = "disk.ext4" // the sandbox's writable disk
)

func vmDir(spec *sandbox.Spec) string { return filepath.Join(spec.Dir, vmDirName) }

// extra is what Runtime.Extra records.
type extra struct {
	Accel qemu.Accel `json:"accel"`
	// Layers are the cache keys of the layer disks the VM reads.
	Layers []string `json:"layers,omitempty"`
	// Restored says the VM was restored from its configuration's
	// template rather than booted.
	Restored bool `json:"restored,omitempty"`
}

// PruneCache removes the layer disks whose layer the image store no
// longer has (sandbox.CachePruner). A VM still using one keeps its open
// file.
//
// It also removes the initramfs images of earlier agents or guests (a day
// after they were made: another agentkernel on this data root may still
// use one), and the templates made with files that are gone.
func (b *Backend) PruneCache(ctx context.Context) error {
	if err := pruneLayerDisks(b.layerCache(), func(key string) bool {
		return dirExists(filepath.Join(b.opts.Root, "images", "layers", key, "fs"))
	}); err != nil {
		return err
	}
	current, _ := b.initrdPath()
	old, _ := filepath.Glob(filepath.Join(b.cacheDir(), "initrd-*.img"))
	for _, p := range old {
		if st, err := os.Stat(p); err == nil && p != current && time.Since(st.ModTime()) > 24*time.Hour {
			os.Remove(p)
		}
	}
	return b.pruneTemplates()
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// Dial connects to a free agent port of the sandbox's VM.
func (b *Backend) Dial(ctx context.Context, spec *sandbox.Spec, rt *sandbox.Runtime) (net.Conn, error) {
	c, err := qemu.DialAgent(ctx, vmDir(spec))
	if err != nil {
		return nil, fmt.Errorf("connecting to the agent of sandbox %q: %w: %w", spec.Name, errdefs.ErrUnavailable, err)
	}
	return c, nil
}

// bootConfig is what the guest's agent is told on the kernel command line.
func bootConfig(spec *sandbox.Spec, layers int) v1.BootConfig {
	return v1.BootConfig{
		Port:        agentPort,
		Hostname:    spec.Name,
		Layers:      layers,
		ReadOnly:    spec.Config.ReadOnlyRoot,
		PidsLimit:   spec.Config.PidsLimit,
		CPUPercent:  spec.Config.CPUPercent,
		StrictCaps:  spec.Config.Seccomp == sandbox.SeccompStrict,
		AllowPtrace: spec.Config.AllowPtrace,
	}
}

// agentPort names the VM's virtio-serial ports.
const agentPort = "agentkernel"
