package agent

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	b := newTailBuffer(10)
	if d, n := b.Snapshot(); len(d) != 0 || n != 0 {
		t.Fatal(d, n)
	}
	b.Write([]byte("abc"))
	b.Write([]byte("defg"))
	if d, n := b.Snapshot(); string(d) != "abcdefg" || n != 0 {
		t.Fatalf("%q %d", d, n)
	}
	b.Write([]byte("hijkl"))
	if d, n := b.Snapshot(); string(d) != "cdefghijkl" || n != 2 {
		t.Fatalf("%q %d", d, n)
	}
	b.Write([]byte("0123456789ABC"))
	if d, n := b.Snapshot(); string(d) != "3456789ABC" || n != 15 {
		t.Fatalf("%q %d", d, n)
	}
	if cap(b.data) > 10 {
		t.Fatalf("buffer grew to %d", cap(b.data))
	}
}

// The tail buffer must agree with a naive model for any write pattern.
func FuzzTailBuffer(f *testing.F) {
	f.Add(uint64(1), 7)
	f.Add(uint64(42), 1)
	f.Add(uint64(7), 64)
	f.Fuzz(func(t *testing.T, seed uint64, max int) {
		if max <= 0 || max > 4096 {
			return
		}
		r := rand.New(rand.NewPCG(seed, seed))
		b := newTailBuffer(max)
		var all []byte
		for range 50 {
			p := make([]byte, r.IntN(2*max+1))
			for i := range p {
				p[i] = byte(r.IntN(256))
			}
			b.Write(p)
			all = append(all, p...)
			keep := all
			if len(keep) > max {
				keep = keep[len(keep)-max:]
			}
			d, dropped := b.Snapshot()
			if !bytes.Equal(d, keep) || dropped != int64(len(all)-len(keep)) {
				t.Fatalf("after %d bytes: kept %d dropped %d; want %d and %d", len(all), len(d), dropped, len(keep), len(all)-len(keep))
			}
		}
	})
}
