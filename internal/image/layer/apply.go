package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUnsafe marks a layer entry that tries to reach outside the directory
// the layer is applied to. Apply wraps it; test with errors.Is.
var ErrUnsafe = errors.New("unsafe layer entry")

// Options says what the caller is allowed to do.
type Options struct {
	// Privileged: the caller may chown, mknod and set non-user xattrs (root
	// in the initial user namespace). Unprivileged: ownership is not
	// restored, device nodes are skipped, setuid/setgid bits are cleared.
	Privileged bool
}

// Stats counts what Apply wrote.
type Stats struct {
	Files     int // regular files, fifos and device nodes
	Dirs      int // directory entries (not the parents Apply had to create)
	Symlinks  int
	Hardlinks int
	Whiteouts int   // whiteouts and opaque-directory markers
	Bytes     int64 // regular file content
	// Skipped lists entries (or parts of entries, such as xattrs) left out
	// and why, at most maxSkipped of them; SkippedTotal counts them all.
	Skipped      []string
	SkippedTotal int
}

const maxSkipped = 100

// Apply reads an uncompressed layer tar from r and writes it into dst, an
// existing empty directory. lowers are the directories of the
// already-applied layers below it, topmost first; they are only read, and
// give path resolution the merged view the mounted image will have.
//
// On error dst is left half-written for the caller to remove, but nothing
// is ever written outside it.
func Apply(ctx context.Context, r io.Reader, dst string, lowers []string, opts Options) (Stats, error) {
	a, err := newApplier(dst, lowers, opts)
	if err != nil {
		return Stats{}, err
	}
	defer a.dst.close()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return a.stats, fmt.Errorf("applying layer: %w", err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.stats, fmt.Errorf("reading layer: %w", err)
		}
		err = a.entry(tr, hdr)
		a.dst.endEntry()
		if err != nil {
			return a.stats, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
	}
	if err := a.finish(); err != nil {
		return a.stats, err
	}
	return a.stats, nil
}

type applier struct {
	opts    Options
	lowers  []string
	dst     *dstDir
	root    *node
	pending map[string]dirMeta // directory metadata set once their contents are written
	buf     []byte             // shared by every file copy
	stats   Stats
}

func newApplier(dst string, lowers []string, opts Options) (*applier, error) {
	a := &applier{
		opts:    opts,
		lowers:  lowers,
		root:    &node{inDst: true},
		pending: map[string]dirMeta{},
		buf:     make([]byte, 64<<10),
	}
	for i, l := range lowers {
		fi, err := os.Stat(l)
		if err != nil {
			return nil, fmt.Errorf("lower layer: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("lower layer %s is not a directory", l)
		}
		// overlayfs merges the layers' roots whatever their xattrs say.
		a.root.lowers = append(a.root.lowers, i)
	}
	d, err := openDst(dst)
	if err != nil {
		return nil, err
	}
	a.dst = d
	return a, nil
}

func (a *applier) entry(tr *tar.Reader, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: a non-directory for the image root", ErrUnsafe)
		}
		return a.rootDir(hdr)
	}
	dir, base := splitName(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(dir, base)
	}
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont,
		tar.TypeSymlink, tar.TypeLink, tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
	default:
		a.skip(hdr.Name, fmt.Sprintf("unsupported tar type %q", hdr.Typeflag))
		return nil
	}
	if d := hdr.Typeflag; (d == tar.TypeChar || d == tar.TypeBlock) && !a.opts.Privileged {
		a.skip(hdr.Name, "device node needs a privileged apply")
		return nil
	}
	if hdr.Typeflag == tar.TypeChar && hdr.Devmajor == 0 && hdr.Devminor == 0 {
		a.skip(hdr.Name, "char device 0/0 is overlayfs's whiteout form, not a file")
		return nil
	}
	parent, err := a.resolveDir(dir, true)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return a.dir(hdr, parent, base)
	case tar.TypeSymlink:
		return a.symlink(hdr, parent, base)
	case tar.TypeLink:
		return a.hardlink(hdr, parent, base)
	case tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
		return a.special(hdr, parent, base)
	default:
		return a.file(tr, hdr, parent, base)
	}
}

func (a *applier) skip(name, why string) {
	a.stats.SkippedTotal++
	if len(a.stats.Skipped) < maxSkipped {
		a.stats.Skipped = append(a.stats.Skipped, fmt.Sprintf("%s: %s", name, why))
	}
}

// create runs mk to create the non-directory parent/name in the directory
// pfd, first clearing the way if dst already has something there. Trying
// first saves a stat per entry: most entries are new.
func (a *applier) create(parent *node, name string, mk func(pfd int) error) error {
	// Forgotten even when dst has nothing here: a lower's entry may be
	// cached, and the new entry hides it.
	parent.forgetChild(name)
	pfd, err := a.dst.dir(parent.path)
	if err != nil {
		return err
	}
	if err := mk(pfd); !errors.Is(err, unix.EEXIST) {
		return err
	}
	if err := a.replace(parent, name); err != nil {
		return err
	}
	// replace may have dropped the cached descriptor.
	if pfd, err = a.dst.dir(parent.path); err != nil {
		return err
	}
	return mk(pfd)
}

// replace removes whatever dst has at parent/name, a directory with all
// its contents.
func (a *applier) replace(parent *node, name string) error {
	parent.forgetChild(name)
	fd, err := a.dst.dir(parent.path)
	if err != nil {
		return err
	}
	st, ok, err := statAt(fd, name)
	if err != nil || !ok {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Unlinkat(fd, name, 0); err != nil {
			return fmt.Errorf("removing %s: %w", parent.child(name), err)
		}
		return nil
	}
	if err := removeAllAt(fd, name); err != nil {
		return err
	}
	a.dst.forget()
	p := parent.child(name)
	for k := range a.pending {
		if k == p || strings.HasPrefix(k, p+"/") {
			delete(a.pending, k)
		}
	}
	return nil
}

// finish sets directory modes and times now that nothing more is written
// into them: deepest first, so that a directory made unsearchable for its
// owner cannot stop its own subdirectories from being finished.
func (a *applier) finish() error {
	paths := make([]string, 0, len(a.pending))
	for p := range a.pending {
		paths = append(paths, p)
	}
	depth := func(p string) int {
		if p == "" {
			return -1
		}
		return strings.Count(p, "/")
	}
	slices.SortFunc(paths, func(x, y string) int { return depth(y) - depth(x) })
	for _, p := range paths {
		m := a.pending[p]
		fd := a.dst.root
		if p != "" {
			var err error
			fd, err = openBeneath(a.dst.root, p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				return fmt.Errorf("finishing directory %s: %w", p, err)
			}
		}
		err := m.apply(fd)
		if p != "" {
			unix.Close(fd)
		}
		if err != nil {
			return fmt.Errorf("finishing directory %q: %w", p, err)
		}
	}
	return nil
}
