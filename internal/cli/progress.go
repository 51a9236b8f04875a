package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/agentkernel-go/agentkernel/internal/image"
)

// pullBars draws one line per downloading layer on a terminal: digest,
// bytes done of total, and the average rate, redrawn in place.
//
// Written here rather than taken from a progress-bar library: those
// compile regular expressions and build tables at package init, a cost
// every CLI invocation (the `run` hot path included) would pay for a
// display only pulls use.
type pullBars struct {
	w    io.Writer
	mu   sync.Mutex
	bars []*bar
	tick *time.Ticker
	stop chan struct{}
	done chan struct{}
	// drawn is how many lines the last redraw wrote.
	drawn int
}

type bar struct {
	id          string
	total, done int64
	start       time.Time
	end         time.Time
	failed      bool
}

// newPullBars returns bars drawn on w, or nil when w is not a terminal
// (pulls are quiet in scripts and logs).
func newPullBars(w io.Writer) *pullBars {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	b := &pullBars{w: w, tick: time.NewTicker(100 * time.Millisecond), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

func (b *pullBars) loop() {
	defer close(b.done)
	for {
		select {
		case <-b.tick.C:
			b.redraw()
		case <-b.stop:
			b.redraw()
			return
		}
	}
}

// Layer implements image.Progress.
func (b *pullBars) Layer(digest string, size int64) (io.Writer, func(error)) {
	id := strings.TrimPrefix(digest, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	l := &bar{id: id, total: size, start: time.Now()}
	b.mu.Lock()
	b.bars = append(b.bars, l)
	b.mu.Unlock()
	w := writerFunc(func(p []byte) (int, error) {
		b.mu.Lock()
		l.done += int64(len(p))
		b.mu.Unlock()
		return len(p), nil
	})
	return w, func(err error) {
		b.mu.Lock()
		l.end, l.failed = time.Now(), err != nil
		b.mu.Unlock()
	}
}

func (b *pullBars) redraw() {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	if b.drawn > 0 {
		fmt.Fprintf(&sb, "\x1b[%dA", b.drawn) // back to the first line
	}
	for _, l := range b.bars {
		sb.WriteString("\r\x1b[K" + l.line(time.Now()) + "\n")
	}
	b.drawn = len(b.bars)
	io.WriteString(b.w, sb.String())
}

func (l *bar) line(now time.Time) string {
	end := now
	if !l.end.IsZero() {
		end = l.end
	}
	rate := float64(l.done) / max(end.Sub(l.start).Seconds(), 1e-3)
	switch {
	case l.failed:
		return fmt.Sprintf("%s  failed after %s", l.id, humanBytes(l.done))
	case !l.end.IsZero():
		return fmt.Sprintf("%s  done  %s  %s/s", l.id, humanBytes(l.done), humanBytes(int64(rate)))
	case l.total > 0:
		width := 24
		n := int(float64(width) * float64(l.done) / float64(l.total))
		n = min(max(n, 0), width)
		return fmt.Sprintf("%s  [%s%s]  %s / %s  %s/s", l.id, strings.Repeat("=", n), strings.Repeat(" ", width-n),
			humanBytes(l.done), humanBytes(l.total), humanBytes(int64(rate)))
	}
	return fmt.Sprintf("%s  %s  %s/s", l.id, humanBytes(l.done), humanBytes(int64(rate)))
}

// progress is b as the image store's progress sink (nil when b is).
func (b *pullBars) progress() image.Progress {
	if b == nil {
		return nil
	}
	return b
}

// wait draws the final state and stops redrawing.
func (b *pullBars) wait() {
	if b == nil {
		return
	}
	b.tick.Stop()
	close(b.stop)
	<-b.done
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
