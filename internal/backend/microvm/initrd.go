//go:build linux

package microvm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cavaliergopher/cpio"
	"github.com/google/renameio/v2"
)

func (b *Backend) layerCache() string { return filepath.Join(b.cacheDir(), "layers") }

// initrd returns the initramfs a VM boots: the guest's base initramfs with
// a second, uncompressed cpio segment holding the agent as /init (the
// kernel unpacks concatenated archives in order). It is built once per
// pair of base and agent binary, named by their identity.
func (b *Backend) initrd() (string, error) {
	out, err := b.initrdPath()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	base := b.guestFile(initrdName)
	if err := os.MkdirAll(b.cacheDir(), 0o755); err != nil {
		return "", err
	}
	if err := writeInitrd(out, base, b.opts.AgentPath); err != nil {
		return "", fmt.Errorf("microVM initramfs: %w", err)
	}
	return out, nil
}

// initrdPath is where initrd keeps the initramfs of the current guest and
// agent binary.
func (b *Backend) initrdPath() (string, error) {
	id := sha256.New()
	for _, p := range []string{b.guestFile(initrdName), b.opts.AgentPath} {
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("microVM initramfs: %w", err)
		}
		fmt.Fprintf(id, "%s %d %d\n", p, st.Size(), st.ModTime().UnixNano())
	}
	return filepath.Join(b.cacheDir(), "initrd-"+hex.EncodeToString(id.Sum(nil))[:16]+".img"), nil
}

// writeInitrd writes base followed by agent as /init, atomically: a
// concurrent builder writes the same bytes.
func writeInitrd(out, base, agent string) error {
	f, err := renameio.NewPendingFile(out, renameio.WithPermissions(0o644))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	src, err := os.Open(base)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, src)
	src.Close()
	if err != nil {
		return err
	}
	// The kernel only looks for a cpio header at a 4-byte boundary and
	// skips zeros up to one.
	if _, err := f.Write(make([]byte, (4-n%4)%4)); err != nil {
		return err
	}
	a, err := os.Open(agent)
	if err != nil {
		return err
	}
	defer a.Close()
	st, err := a.Stat()
	if err != nil {
		return err
	}
	w := cpio.NewWriter(f)
	if err := w.WriteHeader(&cpio.Header{Name: "init", Mode: cpio.TypeReg | 0o755, Size: st.Size()}); err != nil {
		return err
	}
	if _, err := io.Copy(w, a); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}
