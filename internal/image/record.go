package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// Image is a stored image: what `image list` and `image inspect` show,
// and what a sandbox is built from.
type Image struct {
	// Name is the full reference it was pulled or imported as
	// (index.docker.io/library/alpine:3.20), or its ID if it has none.
	Name string `json:"name"`
	// ID is the digest of the image config, as docker shows it.
	ID string `json:"id"`
	// Digest is the manifest's digest ("" for docker save imports).
	Digest   string `json:"digest,omitempty"`
	Platform string `json:"platform,omitempty"`
	// DiffIDs are the layers' uncompressed digests, bottom first, and
	// Chain the matching chain IDs (the store's layer keys).
	DiffIDs []string `json:"diff_ids"`
	Chain   []string `json:"chain"`
	// Size is the unpacked size in bytes.
	Size    int64               `json:"size"`
	Created time.Time           `json:"created"`
	Source  string              `json:"source"` // "pull" or "import"
	Config  sandbox.ImageConfig `json:"config"`
}

// ShortID is the first 12 hex digits of the ID.
func (i *Image) ShortID() string {
	return strings.TrimPrefix(i.ID, "sha256:")[:12]
}

func (s *Store) refPath(name string) string {
	sum := sha256.Sum256([]byte(name))
	return s.dir("refs", hex.EncodeToString(sum[:16])+".json")
}

// Publish makes img visible under its name: written last in a pull or an
// import, so an image is visible only once all its layers are in place.
func (s *Store) Publish(img *Image) error {
	raw, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir("refs"), 0o700); err != nil {
		return err
	}
	return renameio.WriteFile(s.refPath(img.Name), raw, 0o600)
}

// List returns the stored images, by name.
func (s *Store) List() ([]*Image, error) {
	paths, err := filepath.Glob(s.dir("refs", "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, p := range paths {
		img, err := readRecord(p)
		if err != nil {
			continue // a record being replaced; the next list sees it
		}
		out = append(out, img)
	}
	slices.SortFunc(out, func(a, b *Image) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func readRecord(path string) (*Image, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var img Image
	if err := json.Unmarshal(raw, &img); err != nil {
		return nil, fmt.Errorf("image record %s: %w", path, err)
	}
	return &img, nil
}

// Get finds a stored image by reference (as pulled: alpine, alpine:3.20,
// alpine@sha256:…) or by ID or an ID prefix of at least 4 hex digits.
func (s *Store) Get(ref string) (*Image, error) {
	if ref == "" {
		return nil, fmt.Errorf("empty image reference: %w", errdefs.ErrInvalidArgument)
	}
	if isID(ref) {
		return s.byID(ref)
	}
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	img, err := readRecord(s.refPath(r.Name()))
	if err == nil {
		return img, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// repo@digest also finds an image pulled by tag with that digest.
	if d, ok := strings.CutPrefix(r.Identifier(), "sha256:"); ok {
		all, _ := s.List()
		repo := r.Repo()
		for _, img := range all {
			if img.Digest == "sha256:"+d && strings.HasPrefix(img.Name, repo) {
				return img, nil
			}
		}
	}
	return nil, fmt.Errorf("image %q is not in the store: %w", ref, errdefs.ErrNotFound)
}

// isID tells an image ID (sha256:<hex>, or 4 to 64 hex digits) from a name.
// A bare hex word could also be a repository name; docker resolves that
// ambiguity the same way, ID first.
func isID(ref string) bool {
	h := strings.TrimPrefix(ref, "sha256:")
	if len(h) < 4 || len(h) > 64 {
		return false
	}
	if strings.HasPrefix(ref, "sha256:") && len(h) != 64 {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (s *Store) byID(ref string) (*Image, error) {
	prefix := "sha256:" + strings.TrimPrefix(ref, "sha256:")
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var found *Image
	for _, img := range all {
		if !strings.HasPrefix(img.ID, prefix) {
			continue
		}
		if found != nil && found.ID != img.ID {
			return nil, fmt.Errorf("image ID %q is ambiguous: %w", ref, errdefs.ErrInvalidArgument)
		}
		found = img
	}
	if found == nil {
		return nil, fmt.Errorf("image %q is not in the store: %w", ref, errdefs.ErrNotFound)
	}
	return found, nil
}
