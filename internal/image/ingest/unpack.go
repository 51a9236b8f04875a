package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/image/layer"
)

// chainIDs computes the OCI chain IDs of diffIDs: the first layer's is its
// diffID, each next one is sha256(parent + " " + diffID).
func chainIDs(diffIDs []v1.Hash) []string {
	out := make([]string, len(diffIDs))
	var parent string
	for i, d := range diffIDs {
		if i == 0 {
			parent = d.String()
		} else {
			sum := sha256.Sum256([]byte(parent + " " + d.String()))
			parent = "sha256:" + hex.EncodeToString(sum[:])
		}
		out[i] = parent[len("sha256:"):]
	}
	return out
}

// layerSource opens a layer's content. compressed tells whether it is the
// blob as the manifest lists it (digest-checked) or already uncompressed.
type layerSource func(l v1.Layer) (rc io.ReadCloser, compressed bool, err error)

// fromBlob reads the compressed blob (registries, OCI layouts).
func fromBlob(l v1.Layer) (io.ReadCloser, bool, error) {
	rc, err := l.Compressed()
	return rc, true, err
}

// fromDiff reads the uncompressed layer (docker save archives, whose
// layers are stored as plain tars).
func fromDiff(l v1.Layer) (io.ReadCloser, bool, error) {
	rc, err := l.Uncompressed()
	return rc, false, err
}

// ensureLayer makes sure layer chain is applied in the store, applying it
// on top of lowers (the directories below it, topmost first) if not. One
// process applies a layer; concurrent pulls of it wait and then reuse it.
func (f *Fetcher) ensureLayer(ctx context.Context, chain string, lowers []string, l v1.Layer, diffID v1.Hash, open layerSource, progress image.Progress) (int64, error) {
	if m, err := f.s.Layer(chain); err == nil {
		return m.Size, nil
	}
	unlock, err := f.s.LockLayer(ctx, chain)
	if err != nil {
		return 0, err
	}
	defer unlock()
	if m, err := f.s.Layer(chain); err == nil {
		return m.Size, nil // another pull finished it while we waited
	}
	dir, err := f.s.NewLayerDir()
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir) // a no-op once committed
	info, err := applyLayer(ctx, filepath.Join(dir, "fs"), lowers, l, diffID, open, progress)
	if err != nil {
		return 0, err
	}
	if err := f.s.CommitLayer(dir, chain, info); err != nil {
		return 0, err
	}
	return info.Size, nil
}

// applyLayer downloads (or reads) a layer and applies it into fs,
// verifying the blob digest and the diffID on the way.
func applyLayer(ctx context.Context, fs string, lowers []string, l v1.Layer, diffID v1.Hash, open layerSource, progress image.Progress) (image.LayerInfo, error) {
	digest, err := l.Digest()
	if err != nil {
		return image.LayerInfo{}, err
	}
	size, err := l.Size()
	if err != nil {
		size = -1
	}
	rc, compressed, err := open(l)
	if err != nil {
		return image.LayerInfo{}, fmt.Errorf("layer %s: %w", short(digest), err)
	}
	defer rc.Close()
	blob := &countingReader{r: rc}
	var src io.Reader = blob
	finish := func(error) {}
	if compressed && progress != nil {
		var w io.Writer
		w, finish = progress.Layer(digest.String(), size)
		src = io.TeeReader(src, w)
	}
	meta, err := apply(ctx, src, fs, lowers, digest, diffID, compressed)
	if err != nil && compressed && size > 0 && blob.n < size && errors.Is(err, io.ErrUnexpectedEOF) {
		// The blob ended early: the connection, not the archive, broke.
		err = fmt.Errorf("download interrupted after %d of %d bytes: %w", blob.n, size, errdefs.ErrUnavailable)
	}
	finish(err)
	if err != nil {
		return image.LayerInfo{}, fmt.Errorf("layer %s: %w", short(digest), err)
	}
	if compressed {
		meta.Digest = digest.String()
	}
	return meta, nil
}

// apply unpacks one layer stream into fs and checks it against its
// digests. Both checks read to the end of their stream: a digest covers
// every byte, including tar padding after the end-of-archive marker.
func apply(ctx context.Context, src io.Reader, fs string, lowers []string, digest, diffID v1.Hash, compressed bool) (image.LayerInfo, error) {
	var blobHash hash.Hash
	if compressed {
		blobHash = sha256.New()
		src = io.TeeReader(src, blobHash)
	}
	tarStream, err := decompress(src)
	if err != nil {
		return image.LayerInfo{}, err
	}
	defer tarStream.Close()
	diffHash := sha256.New()
	counted := &countingReader{r: io.TeeReader(tarStream, diffHash)}
	_, applyErr := layer.Apply(ctx, counted, fs, lowers, layer.Options{Privileged: os.Geteuid() == 0})
	if _, err := io.Copy(io.Discard, counted); err != nil && applyErr == nil {
		applyErr = err
	}
	if compressed {
		// Also after a failure: a corrupted blob usually breaks the archive
		// first, and its digest is the error worth reporting.
		_, drainErr := io.Copy(io.Discard, src)
		if applyErr == nil {
			applyErr = drainErr
		}
		if got := "sha256:" + hex.EncodeToString(blobHash.Sum(nil)); !transient(drainErr) && got != digest.String() {
			return image.LayerInfo{}, fmt.Errorf("blob digest mismatch: got %s, want %s (corrupted download or registry): %w", got, digest, errdefs.ErrInvalidArgument)
		}
	}
	if errors.Is(applyErr, layer.ErrUnsafe) {
		return image.LayerInfo{}, fmt.Errorf("%w: %w", applyErr, errdefs.ErrInvalidArgument)
	}
	if applyErr != nil {
		return image.LayerInfo{}, applyErr
	}
	if got := "sha256:" + hex.EncodeToString(diffHash.Sum(nil)); got != diffID.String() {
		return image.LayerInfo{}, fmt.Errorf("layer content digest mismatch: got %s, want %s from the image config: %w", got, diffID, errdefs.ErrInvalidArgument)
	}
	return image.LayerInfo{DiffID: diffID.String(), Size: counted.n}, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// transient reports a network failure a new attempt may not meet.
func transient(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, errdefs.ErrUnavailable)
}

func short(h v1.Hash) string {
	if len(h.Hex) > 12 {
		return h.Hex[:12]
	}
	return h.String()
}
