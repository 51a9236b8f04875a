package fetchcmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image"
)

// Client fetches through the helper. It is the image.Fetcher of stores in
// processes that do not link the registry client.
type Client struct {
	root       string
	findServer func() (string, error)
	opts       image.Options
}

// New returns an image.Options.Fetcher that runs the agentkernel-server
// binary findServer finds (when first needed: most commands never fetch)
// on data root root.
func New(root string, findServer func() (string, error)) func(*image.Store) image.Fetcher {
	return func(s *image.Store) image.Fetcher {
		return &Client{root: root, findServer: findServer, opts: s.Options()}
	}
}

// Pull implements image.Fetcher.
func (c *Client) Pull(ctx context.Context, ref string, progress image.Progress) (*image.Image, error) {
	args := []string{"pull"}
	if c.opts.Platform != "" {
		args = append(args, "--platform", c.opts.Platform)
	}
	for _, r := range c.opts.Insecure {
		args = append(args, "--insecure-registry", r)
	}
	imgs, err := c.run(ctx, append(args, "--", ref), progress)
	if err != nil {
		return nil, err
	}
	if len(imgs) != 1 {
		return nil, fmt.Errorf("pulling %s: the helper returned %d images: %w", ref, len(imgs), errdefs.ErrInternal)
	}
	return imgs[0], nil
}

// Import implements image.Fetcher.
func (c *Client) Import(ctx context.Context, path, tag string) ([]*image.Image, error) {
	args := []string{"import", "--tag", tag}
	if c.opts.Platform != "" {
		args = append(args, "--platform", c.opts.Platform)
	}
	return c.run(ctx, append(args, "--", path), nil)
}

// run runs the helper with args and relays its events.
func (c *Client) run(ctx context.Context, args []string, p image.Progress) ([]*image.Image, error) {
	server, err := c.findServer()
	if err != nil {
		return nil, fmt.Errorf("image pulls and imports run in agentkernel-server: %w", err)
	}
	cmd := exec.CommandContext(ctx, server, append([]string{"--root", c.root, "fetch"}, args...)...)
	// SIGTERM lets the helper remove its work in progress.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", server, errors.Join(err, errdefs.ErrUnavailable))
	}
	last, relayErr := relay(out, p)
	io.Copy(io.Discard, out) //nolint:errcheck // let the helper finish writing
	waitErr := cmd.Wait()
	switch {
	case last.Type == "result":
		return last.Images, nil
	case last.Type == "error":
		return nil, errdefs.FromProcess(last.Error, last.Kind)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		msg = fmt.Sprint(errors.Join(relayErr, waitErr))
	}
	return nil, fmt.Errorf("agentkernel-server fetch %s failed: %s: %w", args[0], msg, errdefs.ErrInternal)
}

// relay hands progress events to p and returns the last event.
func relay(r io.Reader, p image.Progress) (event, error) {
	type layer struct {
		w    io.Writer
		done func(error)
	}
	layers := map[string]layer{}
	var zeros [32 << 10]byte
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var e event
	for sc.Scan() {
		e = event{}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return event{}, fmt.Errorf("helper output: %w", err)
		}
		if p == nil {
			continue
		}
		switch e.Type {
		case "layer":
			w, done := p.Layer(e.Digest, e.Size)
			layers[e.Digest] = layer{w, done}
		case "bytes":
			// Progress writers count bytes; they need not see them.
			l, ok := layers[e.Digest]
			for n := e.N; ok && n > 0; n -= int64(len(zeros)) {
				l.w.Write(zeros[:min(n, int64(len(zeros)))]) //nolint:errcheck
			}
		case "layer_done":
			var err error
			if e.Error != "" {
				err = errors.New(e.Error)
			}
			if l, ok := layers[e.Digest]; ok {
				l.done(err)
				delete(layers, e.Digest)
			}
		}
	}
	return e, sc.Err()
}
