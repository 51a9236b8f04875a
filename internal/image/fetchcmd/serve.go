package fetchcmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image"
)

// progressEvery is how often a layer's byte count is reported.
const progressEvery = 100 * time.Millisecond

// Serve runs the helper's side: args are `pull [flags] REF` or
// `import [--tag T] PATH`; newStore makes the store (with a fetcher) from
// the options the flags give. Events go to out; the exit code is 0 when
// the result was written, 2 for bad usage, 1 otherwise.
func Serve(ctx context.Context, args []string, out io.Writer, newStore func(image.Options) *image.Store) int {
	w := &writer{enc: json.NewEncoder(out)}
	images, err := serve(ctx, args, w, newStore)
	if err != nil {
		w.emit(event{Type: "error", Kind: errdefs.Kind(err).Error(), Error: err.Error()})
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	w.emit(event{Type: "result", Images: images})
	return 0
}

var errUsage = fmt.Errorf("usage: fetch pull [--platform P] [--insecure-registry R]... REF | fetch import [--tag T] PATH: %w", errdefs.ErrInvalidArgument)

func serve(ctx context.Context, args []string, w *writer, newStore func(image.Options) *image.Store) ([]*image.Image, error) {
	if len(args) == 0 {
		return nil, errUsage
	}
	fs := flag.NewFlagSet("fetch "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var opts image.Options
	fs.StringVar(&opts.Platform, "platform", "", "")
	fs.Func("insecure-registry", "", func(r string) error { opts.Insecure = append(opts.Insecure, r); return nil })
	tag := fs.String("tag", "", "")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 1 {
		return nil, errUsage
	}
	s := newStore(opts)
	switch args[0] {
	case "pull":
		img, err := s.Pull(ctx, fs.Arg(0), w)
		if err != nil {
			return nil, err
		}
		return []*image.Image{img}, nil
	case "import":
		return s.Import(ctx, fs.Arg(0), *tag)
	}
	return nil, errUsage
}

// writer serialises events; it is the image.Progress of the helper's pull.
type writer struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (w *writer) emit(e event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.enc.Encode(e) //nolint:errcheck // the caller is gone; the pull still completes
}

func (w *writer) Layer(digest string, size int64) (io.Writer, func(error)) {
	w.emit(event{Type: "layer", Digest: digest, Size: size})
	c := &counter{w: w, digest: digest, last: time.Now()}
	return c, func(err error) {
		c.flush()
		e := event{Type: "layer_done", Digest: digest}
		if err != nil {
			e.Error = err.Error()
		}
		w.emit(e)
	}
}

// counter reports a layer's bytes at most every progressEvery.
type counter struct {
	w       *writer
	digest  string
	pending int64
	last    time.Time
}

func (c *counter) Write(p []byte) (int, error) {
	c.pending += int64(len(p))
	if time.Since(c.last) >= progressEvery {
		c.flush()
	}
	return len(p), nil
}

func (c *counter) flush() {
	if c.pending > 0 {
		c.w.emit(event{Type: "bytes", Digest: c.digest, N: c.pending})
		c.pending = 0
	}
	c.last = time.Now()
}
