package mcpserver

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	if s := strings.Repeat("a", MaxOutput); truncate(s) != s {
		t.Fatal("text at the limit was cut")
	}
	s := strings.Repeat("h", keep) + strings.Repeat("m", 1000) + strings.Repeat("t", keep)
	got := truncate(s)
	want := strings.Repeat("h", keep) + "\n\n... [1000 bytes truncated] ...\n\n" + strings.Repeat("t", keep)
	if got != want {
		t.Fatalf("truncate: got %d bytes, want %d", len(got), len(want))
	}
	// Cuts fall on character boundaries.
	u := strings.Repeat("é", MaxOutput)
	if got := truncate(u); !utf8.ValidString(got) || !strings.Contains(got, "bytes truncated") {
		t.Fatalf("multi-byte text cut badly: valid=%v", utf8.ValidString(got))
	}
}

// capture keeps exactly what truncate would, however the writes are split.
func TestCaptureMatchesTruncate(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 10, keep, MaxOutput - 1, MaxOutput, MaxOutput + 1, MaxOutput + keep/2, 3*MaxOutput + 17, 200_000} {
		var b strings.Builder
		for b.Len() < size {
			b.WriteString(string(rune('a' + r.IntN(26))))
			if r.IntN(10) == 0 {
				b.WriteString("ü\n")
			}
		}
		s := b.String()[:size]
		c := &capture{}
		for rest := s; rest != ""; {
			n := min(len(rest), 1+r.IntN(3*keep/2))
			if r.IntN(4) == 0 {
				n = min(len(rest), 1+r.IntN(5))
			}
			c.Write([]byte(rest[:n]))
			rest = rest[n:]
		}
		if got, want := c.String(), truncate(s); got != want {
			t.Fatalf("size %d: capture kept %d bytes, truncate %d", size, len(got), len(want))
		}
		if c.Len() != int64(size) {
			t.Fatalf("size %d: Len %d", size, c.Len())
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, ok := range map[string]bool{"1h": true, "30m": true, "2d": true, "1.5d": true, "0": false, "-1h": false, "x": false, "d": false} {
		if _, err := parseDuration("by", in); (err == nil) != ok {
			t.Errorf("parseDuration(%q): %v", in, err)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"": 9, "TERM": 15, "sigint": 2, "9": 9, "SIGKILL": 9} {
		if got, err := parseSignal(in); err != nil || got != want {
			t.Errorf("parseSignal(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"BOGUS", "0", "65", "-1"} {
		if _, err := parseSignal(in); err == nil {
			t.Errorf("parseSignal(%q) succeeded", in)
		}
	}
}
