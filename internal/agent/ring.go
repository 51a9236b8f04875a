package agent

import "sync"

// tailBuffer keeps the last max bytes written to it and counts what it
// dropped from the head. It allocates as data arrives, so a quiet process
// costs almost nothing.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	data  []byte // grows up to max; then used circularly
	w     int    // once full: index of the oldest byte, where the next write goes
	full  bool
	total int64 // bytes ever written
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

// Write never fails: the oldest bytes make room for new ones.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	b.total += int64(n)
	if len(p) >= b.max {
		// Only the tail of p survives.
		if cap(b.data) < b.max {
			b.data = make([]byte, b.max)
		}
		b.data = b.data[:b.max]
		copy(b.data, p[len(p)-b.max:])
		b.w, b.full = 0, true
		return n, nil
	}
	if !b.full {
		k := min(b.max-len(b.data), len(p))
		b.reserve(len(b.data) + k)
		b.data = append(b.data, p[:k]...)
		if p = p[k:]; len(p) == 0 {
			return n, nil
		}
		b.full, b.w = true, 0
	}
	for len(p) > 0 {
		c := copy(b.data[b.w:], p)
		p = p[c:]
		b.w = (b.w + c) % b.max
	}
	return n, nil
}

// reserve makes room for need bytes, growing geometrically but never
// beyond max.
func (b *tailBuffer) reserve(need int) {
	if need <= cap(b.data) {
		return
	}
	c := min(max(2*cap(b.data), need, 4096), b.max)
	nd := make([]byte, len(b.data), c)
	copy(nd, b.data)
	b.data = nd
}

// Snapshot returns the kept bytes, oldest first, and how many were dropped.
func (b *tailBuffer) Snapshot() (data []byte, dropped int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]byte, 0, len(b.data))
	if b.full {
		out = append(out, b.data[b.w:]...)
		out = append(out, b.data[:b.w]...)
	} else {
		out = append(out, b.data...)
	}
	return out, b.total - int64(len(out))
}
