//go:build linux

package microvm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/flock"
	"github.com/agentkernel-go/agentkernel/internal/vmm/qemu"
)

// A template is a VM saved just after its first boot, before anything ran
// in it: its state (memory and devices) and its writable disk as they were
// at that moment. A sandbox's first start restores the template of its
// configuration instead of booting — the kernel's initialisation, under
// emulation most of a start, is not repeated — and then gets its own
// identity (RNG seed, clock, host name). The first cold start of each
// configuration makes the template, pausing its VM for the save.
//
// The key covers everything the saved state depends on: the kernel, the
// initramfs (and so the agent), the layers, the machine's size, the boot
// parameters but the host name, and whether there is a NIC.

// Files of a template directory.
const (
	templateState = "state"
	templateMeta  = "template.json"
)

// templateInfo records what a restore must repeat, and the files the
// template was made with (pruneTemplates).
type templateInfo struct {
	MAC   string   `json:"mac,omitempty"`
	Files []string `json:"files"`
}

func (b *Backend) templateDir(key string) string {
	return filepath.Join(b.opts.Root, "microvm", "templates", key)
}

// templateKey names cfg's template; cfg.Cmdline must have been rendered
// with the template's host name.
func templateKey(cfg *qemu.Config) string {
	h := sha256.New()
	for _, p := range []string{cfg.Kernel, cfg.Initrd} {
		st, _ := os.Stat(p)
		if st != nil {
			fmt.Fprintf(h, "%s %d %d\n", p, st.Size(), st.ModTime().UnixNano())
		}
	}
	fmt.Fprintf(h, "%s\n%d %d %s %v %d\n", cfg.Cmdline, cfg.VCPUs, cfg.MemoryMiB, cfg.Accel, cfg.NIC != nil, cfg.AgentPorts)
	for _, d := range cfg.Disks[1:] { // the layers; the first is the sandbox's own
		fmt.Fprintf(h, "%s %v %s\n", d.Path, d.ReadOnly, d.Serial)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// restore starts cfg's VM from its template, if there is one, with the
// sandbox's disk (cfg.Disks[0], not yet existing) a copy of the
// template's. It reports false, having changed nothing, when there is
// none.
func (b *Backend) restore(ctx context.Context, cfg *qemu.Config, key, hostname string) (*qemu.VM, bool, error) {
	dir := b.templateDir(key)
	data, err := os.ReadFile(filepath.Join(dir, templateMeta))
	if err != nil {
		return nil, false, nil
	}
	var info templateInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, false, nil
	}
	if err := copySparse(filepath.Join(dir, diskName), cfg.Disks[0].Path); err != nil {
		return nil, false, fmt.Errorf("the template's disk: %w", err)
	}
	c := *cfg
	c.Incoming = filepath.Join(dir, templateState)
	if c.NIC != nil {
		c.NIC.MAC = info.MAC
	}
	vm, err := qemu.Start(ctx, c)
	if err != nil {
		os.Remove(cfg.Disks[0].Path)
		return nil, false, err
	}
	seed := make([]byte, 64)
	rand.Read(seed)
	if err := qemu.SetIdentity(ctx, cfg.Dir, v1.Identity{Seed: seed, Time: time.Now(), Hostname: hostname}); err != nil {
		vm.Kill()
		vm.Close()
		qemu.Remove(cfg.Dir)
		os.Remove(cfg.Disks[0].Path)
		return nil, false, fmt.Errorf("the restored VM's identity: %w", err)
	}
	return vm, true, nil
}

// saveTemplate makes the template of vm (booted from cfg, its agent
// just answered, nothing run in it) unless another process is making it
// or it exists. The VM is paused meanwhile, and runs on afterwards.
func (b *Backend) saveTemplate(ctx context.Context, vm *qemu.VM, cfg *qemu.Config, key string) error {
	dir := b.templateDir(key)
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(dir+".lock", os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	done, cancel := context.WithCancel(ctx)
	cancel() // one try: a template being made elsewhere is not waited for
	if err := flock.Wait(done, int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, templateMeta)); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	err = vm.Save(ctx, filepath.Join(tmp, templateState))
	if err == nil {
		// The disk as it was at the save, while the VM is still paused.
		err = copySparse(cfg.Disks[0].Path, filepath.Join(tmp, diskName))
	}
	if rerr := vm.Resume(context.WithoutCancel(ctx)); err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	info := templateInfo{Files: []string{cfg.Kernel, cfg.Initrd}}
	for _, d := range cfg.Disks[1:] {
		info.Files = append(info.Files, d.Path)
	}
	if cfg.NIC != nil {
		info.MAC = cfg.NIC.MAC
	}
	data, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(tmp, templateMeta), data, 0o600); err != nil {
		return err
	}
	os.RemoveAll(dir) // a half-made one of a crashed process
	return os.Rename(tmp, dir)
}

// pruneTemplates removes the templates one of whose files is gone (an
// earlier agent's initramfs, a pruned layer's disk): they can never be
// used again.
func (b *Backend) pruneTemplates() error {
	dirs, _ := filepath.Glob(filepath.Join(b.opts.Root, "microvm", "templates", "*"))
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, templateMeta))
		if err != nil {
			continue // a lock file, or a template being made
		}
		var info templateInfo
		stale := json.Unmarshal(data, &info) != nil
		for _, f := range info.Files {
			stale = stale || !fileExists(f)
		}
		if stale {
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("removing template %s: %w", filepath.Base(dir), err)
			}
			os.Remove(dir + ".lock")
		}
	}
	return nil
}

// copySparse copies the file src to a new file dst, holes kept: a
// sandbox's disk is gigabytes of which a few megabytes are written.
func copySparse(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = copyData(in, out, st.Size())
	if err == nil {
		err = out.Truncate(st.Size())
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

// copyData copies the data extents of in to the same offsets of out.
func copyData(in, out *os.File, size int64) error {
	for off := int64(0); off < size; {
		data, err := unix.Seek(int(in.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole is left
		} else if err != nil {
			return err
		}
		hole, err := unix.Seek(int(in.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		if _, err := in.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := out.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.CopyN(out, in, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return nil
}
