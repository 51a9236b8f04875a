package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPullBarsDraw(t *testing.T) {
	var out bytes.Buffer
	b := &pullBars{w: &out, tick: time.NewTicker(time.Hour), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	w1, end1 := b.Layer("sha256:0123456789abcdef", 2048)
	w2, end2 := b.Layer("sha256:fedcba9876543210", -1)
	w1.Write(make([]byte, 1024))
	b.redraw()
	if s := out.String(); !strings.Contains(s, "0123456789ab  [============            ]  1.0 KiB / 2.0 KiB") {
		t.Fatalf("half-way line missing:\n%q", s)
	}
	w1.Write(make([]byte, 1024))
	w2.Write(make([]byte, 10))
	end1(nil)
	end2(errors.New("boom"))
	b.wait()
	last := out.String()[strings.LastIndex(out.String(), "\x1b[2A"):]
	if !strings.Contains(last, "0123456789ab  done  2.0 KiB") || !strings.Contains(last, "fedcba987654  failed after 10 B") {
		t.Fatalf("final state:\n%q", last)
	}
	if (*pullBars)(nil).progress() != nil {
		t.Fatal("nil bars must be a nil progress sink")
	}
}
