package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	"github.com/agentkernel-go/agentkernel/internal/image/layer"
)

// layerMeta is layers/<chain>/layer.json.
type layerMeta struct {
	DiffID string `json:"diff_id"`
	Digest string `json:"digest,omitempty"` // of the blob it was unpacked from
	Size   int64  `json:"size"`             // uncompressed bytes
}

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
func (s *Store) ensureLayer(ctx context.Context, chain string, lowers []string, l v1.Layer, diffID v1.Hash, open layerSource, progress Progress) (int64, error) {
	if m, err := s.readLayer(chain); err == nil {
		return m.Size, nil
	}
	unlock, err := s.lock(ctx, "layer-"+chain, true)
	if err != nil {
		return 0, err
	}
	defer unlock()
	if m, err := s.readLayer(chain); err == nil {
		return m.Size, nil // another pull finished it while we waited
	}
	if err := os.MkdirAll(s.dir("tmp"), 0o700); err != nil {
		return 0, fmt.Errorf("image store: %w", err)
	}
	if err := os.MkdirAll(s.dir("layers"), 0o700); err != nil {
		return 0, fmt.Errorf("image store: %w", err)
	}
	tmp, err := os.MkdirTemp(s.dir("tmp"), "layer-")
	if err != nil {
		return 0, fmt.Errorf("image store: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed into place
	if err := os.Chmod(tmp, 0o700); err != nil {
		return 0, err
	}
	fs := filepath.Join(tmp, "fs")
	if err := os.Mkdir(fs, 0o755); err != nil {
		return 0, err
	}
	meta, err := applyLayer(ctx, fs, lowers, l, diffID, open, progress)
	if err != nil {
		return 0, err
	}
	raw, _ := json.Marshal(meta)
	if err := os.WriteFile(filepath.Join(tmp, "layer.json"), raw, 0o600); err != nil {
		return 0, err
	}
	if err := syncDir(tmp); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, s.layerDir(chain)); err != nil {
		return 0, fmt.Errorf("image store: %w", err)
	}
	return meta.Size, nil
}

// applyLayer downloads (or reads) a layer and applies it into fs,
// verifying the blob digest and the diffID on the way.
func applyLayer(ctx context.Context, fs string, lowers []string, l v1.Layer, diffID v1.Hash, open layerSource, progress Progress) (layerMeta, error) {
	digest, err := l.Digest()
	if err != nil {
		return layerMeta{}, err
	}
	size, err := l.Size()
	if err != nil {
		size = -1
	}
	rc, compressed, err := open(l)
	if err != nil {
		return layerMeta{}, fmt.Errorf("layer %s: %w", short(digest), err)
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
		return layerMeta{}, fmt.Errorf("layer %s: %w", short(digest), err)
	}
	if compressed {
		meta.Digest = digest.String()
	}
	return meta, nil
}

// apply unpacks one layer stream into fs and checks it against its
// digests. Both checks read to the end of their stream: a digest covers
// every byte, including tar padding after the end-of-archive marker.
func apply(ctx context.Context, src io.Reader, fs string, lowers []string, digest, diffID v1.Hash, compressed bool) (layerMeta, error) {
	var blobHash hash.Hash
	if compressed {
		blobHash = sha256.New()
		src = io.TeeReader(src, blobHash)
	}
	tarStream, err := decompress(src)
	if err != nil {
		return layerMeta{}, err
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
			return layerMeta{}, fmt.Errorf("blob digest mismatch: got %s, want %s (corrupted download or registry): %w", got, digest, errdefs.ErrInvalidArgument)
		}
	}
	if errors.Is(applyErr, layer.ErrUnsafe) {
		return layerMeta{}, fmt.Errorf("%w: %w", applyErr, errdefs.ErrInvalidArgument)
	}
	if applyErr != nil {
		return layerMeta{}, applyErr
	}
	if got := "sha256:" + hex.EncodeToString(diffHash.Sum(nil)); got != diffID.String() {
		return layerMeta{}, fmt.Errorf("layer content digest mismatch: got %s, want %s from the image config: %w", got, diffID, errdefs.ErrInvalidArgument)
	}
	return layerMeta{DiffID: diffID.String(), Size: counted.n}, nil
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

func (s *Store) readLayer(chain string) (*layerMeta, error) {
	raw, err := os.ReadFile(filepath.Join(s.layerDir(chain), "layer.json"))
	if err != nil {
		return nil, err
	}
	var m layerMeta
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return &m, nil
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

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
