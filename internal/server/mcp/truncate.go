package mcpserver

import (
	"fmt"
	"sync"
	"unicode/utf8"
)

// MaxOutput is the most text a tool returns, as in agentkernel (16 KB):
// longer output keeps its first and last MaxOutput/2 bytes — the start
// (what ran, install progress) and the end (the result, the error).
const MaxOutput = 16_000

const keep = MaxOutput / 2

// truncate cuts s to MaxOutput bytes, head and tail, with a marker.
func truncate(s string) string {
	if len(s) <= MaxOutput {
		return s
	}
	return cut([]byte(s[:keep]), []byte(s[len(s)-keep:]), int64(len(s)))
}

// cut joins head and tail of a text of total bytes with a marker saying
// how many bytes are left out. It moves both cuts to character
// boundaries, so valid UTF-8 stays valid.
func cut(head, tail []byte, total int64) string {
	for i := len(head) - 1; i >= 0 && i >= len(head)-utf8.UTFMax; i-- {
		if utf8.RuneStart(head[i]) {
			if !utf8.FullRune(head[i:]) {
				head = head[:i]
			}
			break
		}
	}
	for j := 0; j < utf8.UTFMax && j < len(tail); j++ {
		if utf8.RuneStart(tail[j]) {
			tail = tail[j:]
			break
		}
	}
	omitted := total - int64(len(head)) - int64(len(tail))
	return fmt.Sprintf("%s\n\n... [%d bytes truncated] ...\n\n%s", head, omitted, tail)
}

// capture is an io.Writer that keeps what truncate would of everything
// written to it, in constant memory: the first MaxOutput bytes and a ring
// of the last MaxOutput/2. A command's stdout and stderr may share one.
type capture struct {
	mu    sync.Mutex
	head  []byte
	ring  []byte // the last bytes written; ring[start:] then ring[:start] in order
	start int
	total int64
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	c.total += int64(n)
	if room := MaxOutput - len(c.head); room > 0 {
		c.head = append(c.head, p[:min(room, n)]...)
	}
	if n >= keep {
		c.ring = append(c.ring[:0], p[n-keep:]...)
		c.start = 0
		return n, nil
	}
	if free := keep - len(c.ring); free > 0 {
		k := min(free, len(p))
		c.ring = append(c.ring, p[:k]...)
		p = p[k:]
	}
	for len(p) > 0 {
		k := copy(c.ring[c.start:], p)
		p = p[k:]
		c.start = (c.start + k) % keep
	}
	return n, nil
}

// String returns everything written, or its head and tail with a marker.
func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total <= MaxOutput {
		return string(c.head)
	}
	tail := make([]byte, 0, keep)
	tail = append(append(tail, c.ring[c.start:]...), c.ring[:c.start]...)
	return cut(c.head[:keep], tail, c.total)
}

// Len is how many bytes were written.
func (c *capture) Len() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// complete returns everything written when nothing had to be cut.
func (c *capture) complete() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.head, c.total <= MaxOutput
}
