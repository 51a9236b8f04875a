package guest

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The guest's real kernel (Debian's, LZ4-compressed with a PVH note)
// yields an ELF vmlinux that boots; see the boot test, which uses it.
func TestExtractVmlinuxOfTheGuestKernel(t *testing.T) {
	g := preparedGuest(t)
	out := filepath.Join(t.TempDir(), VmlinuxFile)
	if err := ExtractVmlinux(t.Context(), g.Kernel, out); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		t.Errorf("vmlinux: %v %v", f.Machine, f.Type)
	}
}

// A bzImage whose kernel cannot boot through PVH, or is not a bzImage,
// gives an error and no file.
func TestExtractVmlinuxRefuses(t *testing.T) {
	dir := t.TempDir()
	noPVH := gzipBzImage(t, []byte("\x7fELF not really"))
	for name, data := range map[string][]byte{
		"not a bzImage":  []byte(strings.Repeat("x", 4096)),
		"gzip, not ELF":  noPVH,
		"unknown format": rawBzImage(t, []byte("BZh91AY&SY........")),
	} {
		in, out := filepath.Join(dir, "bz"), filepath.Join(dir, "out")
		os.WriteFile(in, data, 0o644)
		if err := ExtractVmlinux(t.Context(), in, out); err == nil {
			t.Errorf("%s: extracted", name)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: left %s", name, out)
		}
	}
}

// gzipBzImage is a minimal bzImage header around payload, gzip-compressed.
func gzipBzImage(t *testing.T, payload []byte) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(payload)
	zw.Close()
	return rawBzImage(t, binary.LittleEndian.AppendUint32(z.Bytes(), uint32(len(payload))))
}

func rawBzImage(t *testing.T, payload []byte) []byte {
	t.Helper()
	b := make([]byte, 5*512)
	b[0x1f1] = 4
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x206:], 0x20f)
	binary.LittleEndian.PutUint32(b[0x248:], 0)
	binary.LittleEndian.PutUint32(b[0x24c:], uint32(len(payload)))
	return append(b, payload...)
}
