package layer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkApply10kFiles applies a layer of 10 000 small files in 100
// directories on top of a lower layer, the shape of a distribution image.
func BenchmarkApply10kFiles(b *testing.B) {
	lower := lowerOf(b, dir("usr/"), dir("usr/lib/"), sym("lib", "usr/lib"))
	var es []ent
	for d := range 100 {
		es = append(es, dir(fmt.Sprintf("lib/d%02d/", d)))
		for f := range 100 {
			es = append(es, reg(fmt.Sprintf("lib/d%02d/f%03d", d, f), "0123456789abcdef"))
		}
	}
	data := mkTar(b, es...)
	root := b.TempDir()
	opts := Options{Privileged: os.Geteuid() == 0}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		dst := filepath.Join(root, fmt.Sprint(i))
		if err := os.Mkdir(dst, 0o755); err != nil {
			b.Fatal(err)
		}
		st, err := Apply(b.Context(), bytes.NewReader(data), dst, []string{lower}, opts)
		if err != nil || st.Files != 10_000 {
			b.Fatalf("Apply: %v (%d files)", err, st.Files)
		}
		b.StopTimer()
		os.RemoveAll(dst)
		b.StartTimer()
	}
}
