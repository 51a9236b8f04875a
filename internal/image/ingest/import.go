package ingest

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentkernel-go/agentkernel/internal/image"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// Import stores the images of a `docker save` archive (plain or gzipped)
// or an OCI image layout (a directory, or a tar of one), without a
// registry. tag, if set, names the image (the archive must then hold
// exactly one); otherwise the names recorded in the archive are used.
func (f *Fetcher) Import(ctx context.Context, path, tag string) ([]*image.Image, error) {
	var tagRef *name.Tag
	if tag != "" {
		t, err := name.NewTag(tag)
		if err != nil {
			return nil, fmt.Errorf("tag %q: %v: %w", tag, err, errdefs.ErrInvalidArgument)
		}
		tagRef = &t
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("importing %s: %w", path, notFound(err))
	}
	var imgs []*image.Image
	if st.IsDir() {
		imgs, err = f.importLayout(ctx, path, tagRef)
	} else {
		imgs, err = f.importArchive(ctx, path, tagRef)
	}
	if err != nil {
		return nil, fmt.Errorf("importing %s: %w", path, archiveError(err))
	}
	return imgs, nil
}

// importArchive tells a docker save archive (manifest.json) from a tarred
// OCI layout (oci-layout, index.json) and imports it.
func (f *Fetcher) importArchive(ctx context.Context, path string, tag *name.Tag) ([]*image.Image, error) {
	opener := func() (io.ReadCloser, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		r, err := decompress(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{r, f}, nil
	}
	kind, err := archiveKind(opener)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "docker":
		return f.importDockerArchive(ctx, opener, tag)
	case "oci":
		dir, err := f.s.TempDir("layout-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if err := extractLayout(opener, dir); err != nil {
			return nil, err
		}
		return f.importLayout(ctx, dir, tag)
	}
	return nil, fmt.Errorf("not a docker save archive or an OCI layout (no manifest.json or oci-layout): %w", errdefs.ErrInvalidArgument)
}

// archiveKind scans the tar's entry names.
func archiveKind(open tarball.Opener) (string, error) {
	rc, err := open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	oci := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", archiveError(err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "manifest.json":
			return "docker", nil
		case "oci-layout":
			oci = true
		}
	}
	if oci {
		return "oci", nil
	}
	return "", nil
}

func (f *Fetcher) importDockerArchive(ctx context.Context, open tarball.Opener, tag *name.Tag) ([]*image.Image, error) {
	manifest, err := tarball.LoadManifest(open)
	if err != nil {
		return nil, archiveError(err)
	}
	if tag != nil && len(manifest) != 1 {
		return nil, fmt.Errorf("the archive holds %d images; --tag needs exactly one: %w", len(manifest), errdefs.ErrInvalidArgument)
	}
	var out []*image.Image
	for _, m := range manifest {
		// The first tag picks the entry; every tag of it becomes a name.
		var pick *name.Tag
		var names []string
		if len(m.RepoTags) > 0 {
			t, err := name.NewTag(m.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("archive tag %q: %v: %w", m.RepoTags[0], err, errdefs.ErrInvalidArgument)
			}
			pick = &t
			for _, rt := range m.RepoTags {
				if t, err := name.NewTag(rt); err == nil {
					names = append(names, t.Name())
				}
			}
		} else if len(manifest) > 1 {
			return nil, fmt.Errorf("the archive holds several images and one has no tag: %w", errdefs.ErrInvalidArgument)
		}
		if tag != nil {
			names = []string{tag.Name()}
		}
		img, err := tarball.Image(open, pick)
		if err != nil {
			return nil, archiveError(err)
		}
		recs, err := f.saveNames(ctx, names, img, fromDiff, "")
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// saveNames stores img once and records it under each name (or its ID).
func (f *Fetcher) saveNames(ctx context.Context, names []string, img v1.Image, open layerSource, digest string) ([]*image.Image, error) {
	if len(names) == 0 {
		names = []string{""}
	}
	var out []*image.Image
	for _, n := range names {
		rec, err := f.save(ctx, n, img, open, nil, "import", digest)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// Annotations OCI layouts name their images with.
const (
	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerdRef = "io.containerd.image.name"
)

func (f *Fetcher) importLayout(ctx context.Context, dir string, tag *name.Tag) ([]*image.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("not an OCI layout: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, archiveError(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, archiveError(err)
	}
	if tag != nil && len(im.Manifests) != 1 {
		return nil, fmt.Errorf("the layout holds %d images; --tag needs exactly one: %w", len(im.Manifests), errdefs.ErrInvalidArgument)
	}
	plat, err := f.platform()
	if err != nil {
		return nil, err
	}
	var out []*image.Image
	for _, d := range im.Manifests {
		img, digest, err := f.layoutImage(idx, d, plat)
		if err != nil {
			return nil, err
		}
		var names []string
		if tag != nil {
			names = []string{tag.Name()}
		} else if n := layoutName(d.Annotations); n != "" {
			names = []string{n}
		}
		recs, err := f.saveNames(ctx, names, img, fromBlob, digest)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// layoutImage resolves an index.json entry to an image, picking the
// platform's child of a nested index.
func (f *Fetcher) layoutImage(idx v1.ImageIndex, d v1.Descriptor, plat v1.Platform) (v1.Image, string, error) {
	if !d.MediaType.IsIndex() {
		img, err := idx.Image(d.Digest)
		return img, d.Digest.String(), archiveError(err)
	}
	child, err := idx.ImageIndex(d.Digest)
	if err != nil {
		return nil, "", archiveError(err)
	}
	cm, err := child.IndexManifest()
	if err != nil {
		return nil, "", archiveError(err)
	}
	for _, c := range cm.Manifests {
		if c.Platform != nil && c.Platform.Satisfies(plat) && c.MediaType.IsImage() {
			img, err := child.Image(c.Digest)
			return img, c.Digest.String(), archiveError(err)
		}
	}
	return nil, "", fmt.Errorf("no image for platform %s in the layout's index: %w", plat, errdefs.ErrNotFound)
}

// layoutName is the full image name an index.json entry carries, if any:
// containerd and docker record the full name, the OCI annotation often
// only a tag.
func layoutName(ann map[string]string) string {
	for _, key := range []string{annotationContainerdRef, annotationRefName} {
		if n := ann[key]; n != "" {
			if r, err := name.ParseReference(n); err == nil && strings.ContainsAny(n, ":/@") {
				return r.Name()
			}
		}
	}
	return ""
}

// extractLayout unpacks a tarred OCI layout into dir. Only regular files
// and directories are taken, and no name may leave dir.
func extractLayout(open tarball.Opener, dir string) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return archiveError(err)
		}
		rel := filepath.Clean(strings.TrimPrefix(h.Name, "/"))
		if rel == "." {
			continue
		}
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("archive entry %q leaves the archive: %w", h.Name, errdefs.ErrInvalidArgument)
		}
		target := filepath.Join(dir, rel)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("archive entry %q: %w", h.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return archiveError(err)
			}
		}
	}
}

// archiveError marks a failure to read an archive as bad input.
func archiveError(err error) error {
	if err == nil || errdefs.Kind(err) != errdefs.ErrInternal {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("archive is truncated: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
}

func notFound(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
	}
	return err
}
