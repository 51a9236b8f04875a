package guest

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// VmlinuxFile is the uncompressed kernel Prepare extracts from the
// bzImage when it can be booted directly (PVH).
const VmlinuxFile = "vmlinux"

// Under software emulation a bzImage's own decompressor is slow: on this
// kind of machine it was 0.6 s of a 3.5 s boot. QEMU loads an ELF kernel
// that carries a PVH entry point (CONFIG_PVH) straight into memory and
// starts it there, so the guest runs no decompressor at all.

// pvhNote is the ELF note type of the PVH entry point, in Xen's namespace
// (XEN_ELFNOTE_PHYS32_ENTRY).
const pvhNote = 18

// errNoPVH: the kernel cannot be booted as an uncompressed ELF.
var errNoPVH = errors.New("kernel has no PVH entry point")

// ExtractVmlinux writes, atomically, the uncompressed kernel inside the
// bzImage at bzImage to out, if it can be booted through PVH. A kernel
// compressed with an algorithm not handled here (only gzip, LZ4 and zstd
// are), or without a PVH entry, gives an error and writes nothing: the
// bzImage then boots as it is.
func ExtractVmlinux(ctx context.Context, bzImage, out string) error {
	data, err := os.ReadFile(bzImage)
	if err != nil {
		return err
	}
	payload, err := bzImagePayload(data)
	if err != nil {
		return fmt.Errorf("%s: %w", bzImage, err)
	}
	// The kernel's build appends the uncompressed size to every payload.
	size := binary.LittleEndian.Uint32(payload[len(payload)-4:])
	r, err := decompressor(payload)
	if err != nil {
		return fmt.Errorf("%s: %w", bzImage, err)
	}
	vmlinux := make([]byte, size)
	if _, err := io.ReadFull(r, vmlinux); err != nil {
		return fmt.Errorf("%s: decompressing: %w", bzImage, err)
	}
	if err := checkPVH(vmlinux); err != nil {
		return fmt.Errorf("%s: %w", bzImage, err)
	}
	return writeAtomic(out, 0o644, func(w io.Writer) error {
		_, err := ctxWriter{ctx, w}.Write(vmlinux)
		return err
	})
}

// bzImagePayload is the compressed kernel of a bzImage: payload_offset and
// payload_length (boot protocol 2.08+) locate it after the setup sectors.
func bzImagePayload(b []byte) ([]byte, error) {
	if len(b) < 0x250 || string(b[0x202:0x206]) != "HdrS" || binary.LittleEndian.Uint16(b[0x206:]) < 0x208 {
		return nil, fmt.Errorf("not a bzImage of boot protocol 2.08 or later")
	}
	setup := int(b[0x1f1])
	if setup == 0 {
		setup = 4
	}
	start := (setup+1)*512 + int(binary.LittleEndian.Uint32(b[0x248:]))
	end := start + int(binary.LittleEndian.Uint32(b[0x24c:]))
	if start < 0 || end > len(b) || end-start < 8 {
		return nil, fmt.Errorf("bzImage payload out of the file")
	}
	return b[start:end], nil
}

// decompressor reads payload by its magic number.
func decompressor(payload []byte) (io.Reader, error) {
	switch {
	case bytes.HasPrefix(payload, []byte{0x1f, 0x8b}):
		return gzip.NewReader(bytes.NewReader(payload))
	case bytes.HasPrefix(payload, []byte{0x02, 0x21, 0x4c, 0x18}): // LZ4, legacy frame
		return lz4.NewReader(bytes.NewReader(payload)), nil
	case bytes.HasPrefix(payload, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return zstd.NewReader(bytes.NewReader(payload))
	}
	return nil, fmt.Errorf("kernel compressed with an unsupported algorithm (magic % x)", payload[:4])
}

// checkPVH requires an x86-64 ELF with a PVH entry note.
func checkPVH(vmlinux []byte) error {
	f, err := elf.NewFile(bytes.NewReader(vmlinux))
	if err != nil {
		return fmt.Errorf("decompressed kernel: %w", err)
	}
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("decompressed kernel is for %v", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(p.Open())
		if err != nil {
			return err
		}
		for len(notes) >= 12 {
			namesz := binary.LittleEndian.Uint32(notes)
			descsz := binary.LittleEndian.Uint32(notes[4:])
			typ := binary.LittleEndian.Uint32(notes[8:])
			next := 12 + int(align4(namesz)) + int(align4(descsz))
			if next > len(notes) {
				break
			}
			if typ == pvhNote && string(bytes.TrimRight(notes[12:12+namesz], "\x00")) == "Xen" {
				return nil
			}
			notes = notes[next:]
		}
	}
	return errNoPVH
}

func align4(n uint32) uint32 { return (n + 3) &^ 3 }
