package layer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxSymlinks bounds symlink expansions per lookup, as the kernel's 40.
const maxSymlinks = 40

const opaqueXattr = "user.overlay.opaque"

// node is a directory of the merged view, cached so that entries of the same
// directory do not re-walk the lowers. Its path has no symlinks in it, so in
// every layer that contributes to it the same path names real directories.
// Whoever changes dst at a path detaches the node there (forgetChild), so a
// cached node never outlives the state it was computed from.
type node struct {
	parent   *node
	name     string
	path     string           // cleaned logical path, "" for the root
	inDst    bool             // dst has this directory (and so all its parents)
	lowers   []int            // lowers whose directory here shows through, topmost first
	children map[string]*node // directories only
	links    map[string]found // symlinks, which merged-/usr images put on every path
}

func (n *node) child(name string) string {
	if n.path == "" {
		return name
	}
	return n.path + "/" + name
}

func (n *node) forgetChild(name string) {
	delete(n.children, name)
	delete(n.links, name)
}

func (n *node) attach(name string, inDst bool, lowers []int) *node {
	c := &node{parent: n, name: name, path: n.child(name), inDst: inDst, lowers: lowers}
	if n.children == nil {
		n.children = map[string]*node{}
	}
	n.children[name] = c
	delete(n.links, name)
	return c
}

type kind int

const (
	kindNone  kind = iota // nothing visible
	kindDir               // a directory of the merged view: found.dir
	kindOther             // a non-directory in layer found.layer
)

// dstLayer is found.layer for an entry that lives in dst.
const dstLayer = -1

type found struct {
	kind        kind
	dir         *node
	layer       int
	mode        uint32 // st_mode of a kindOther
	dstWhiteout bool   // kindNone because dst has a whiteout here
	target      string // of a symlink, once resolveDir has read it
}

// lookup finds name in the merged directory n, the way overlayfs does: the
// topmost layer's entry wins; directories merge downwards until a layer has
// a whiteout, a non-directory or an opaque directory there.
func (a *applier) lookup(n *node, name string) (found, error) {
	if c, ok := n.children[name]; ok {
		return found{kind: kindDir, dir: c}, nil
	}
	if f, ok := n.links[name]; ok {
		return f, nil
	}
	inDst := false
	if n.inDst {
		fd, err := a.dst.dir(n.path)
		if err != nil {
			return found{}, err
		}
		st, ok, err := statAt(fd, name)
		switch {
		case err != nil:
			return found{}, err
		case !ok:
		case isWhiteout(&st):
			return found{kind: kindNone, dstWhiteout: true}, nil
		case st.Mode&unix.S_IFMT == unix.S_IFDIR:
			inDst = true
			opaque, err := dstOpaque(fd, name)
			if err != nil {
				return found{}, err
			}
			if opaque {
				return found{kind: kindDir, dir: n.attach(name, true, nil)}, nil
			}
		default:
			return found{kind: kindOther, layer: dstLayer, mode: st.Mode}, nil
		}
	}
	var stack []int
scan:
	for _, i := range n.lowers {
		p := filepath.Join(a.lowers[i], n.path, name)
		var st unix.Stat_t
		err := unix.Lstat(p, &st)
		switch {
		case errors.Is(err, unix.ENOENT):
			continue
		case err != nil:
			return found{}, fmt.Errorf("reading lower layer: %w", &os.PathError{Op: "lstat", Path: p, Err: err})
		case isWhiteout(&st):
			break scan
		case st.Mode&unix.S_IFMT == unix.S_IFDIR:
			stack = append(stack, i)
			if lowerOpaque(p) {
				break scan
			}
		default:
			if !inDst && len(stack) == 0 {
				return found{kind: kindOther, layer: i, mode: st.Mode}, nil
			}
			break scan
		}
	}
	if inDst || len(stack) > 0 {
		return found{kind: kindDir, dir: n.attach(name, inDst, stack)}, nil
	}
	return found{kind: kindNone}, nil
}

func dstOpaque(dirfd int, name string) (bool, error) {
	fd, err := openBeneath(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return false, fmt.Errorf("opening %s: %w", name, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 8)
	n, err := unix.Fgetxattr(fd, opaqueXattr, buf)
	return err == nil && string(buf[:n]) == "y", nil
}

func lowerOpaque(p string) bool {
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(p, opaqueXattr, buf)
	return err == nil && string(buf[:n]) == "y"
}

// errNotExist is returned by resolveDir(create=false) for a path missing
// from the merged view.
var errNotExist = errors.New("no such directory in the image")

// resolveDir resolves p (a cleaned path) to a directory of the merged view,
// following symlinks in every component the way the kernel would inside the
// mounted image, but with "/" and ".." pinned to the image root. With create
// it makes missing directories and copies the result into dst, so that a
// caller can write into it.
func (a *applier) resolveDir(p string, create bool) (*node, error) {
	cur := a.root
	rem := strings.Split(p, "/")
	links := 0
	for len(rem) > 0 {
		c := rem[0]
		rem = rem[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if cur.parent != nil {
				cur = cur.parent
			}
			continue
		}
		f, err := a.lookup(cur, c)
		if err != nil {
			return nil, err
		}
		switch {
		case f.kind == kindDir:
			cur = f.dir
		case f.kind == kindNone:
			if !create {
				return nil, fmt.Errorf("%s: %w", cur.child(c), errNotExist)
			}
			if cur, err = a.mkdirFresh(cur, c, f.dstWhiteout); err != nil {
				return nil, err
			}
		case f.mode&unix.S_IFMT == unix.S_IFLNK:
			if links++; links > maxSymlinks {
				return nil, fmt.Errorf("resolving %s: too many levels of symbolic links", p)
			}
			target, err := a.readlink(cur, c, f)
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(target, "/") {
				cur = a.root
			}
			rem = append(strings.Split(target, "/"), rem...)
		default:
			return nil, fmt.Errorf("resolving %s: %s is not a directory", p, cur.child(c))
		}
	}
	if create {
		if err := a.ensureDst(cur); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

// readlink reads the symlink f found at dir/name and caches it in dir.
func (a *applier) readlink(dir *node, name string, f found) (string, error) {
	if f.target != "" {
		return f.target, nil
	}
	var err error
	if f.layer == dstLayer {
		var fd int
		if fd, err = a.dst.dir(dir.path); err != nil {
			return "", err
		}
		if f.target, err = readlinkAt(fd, name); err != nil {
			return "", err
		}
	} else {
		p := filepath.Join(a.lowers[f.layer], dir.path, name)
		if f.target, err = os.Readlink(p); err != nil {
			return "", fmt.Errorf("reading lower layer: %w", err)
		}
	}
	if dir.links == nil {
		dir.links = map[string]found{}
	}
	dir.links[name] = f
	return f.target, nil
}

// mkdirFresh creates a directory that exists nowhere in the merged view.
func (a *applier) mkdirFresh(parent *node, name string, overWhiteout bool) (*node, error) {
	if err := a.ensureDst(parent); err != nil {
		return nil, err
	}
	fd, err := a.dst.dir(parent.path)
	if err != nil {
		return nil, err
	}
	if overWhiteout {
		if err := unix.Unlinkat(fd, name, 0); err != nil {
			return nil, fmt.Errorf("removing whiteout %s: %w", parent.child(name), err)
		}
	}
	if err := unix.Mkdirat(fd, name, 0o755); err != nil {
		return nil, fmt.Errorf("creating directory %s: %w", parent.child(name), err)
	}
	if overWhiteout {
		// This layer whited the name out: the new directory must not let the
		// lower ones it hid show through again.
		if err := setOpaque(fd, name); err != nil {
			return nil, err
		}
	}
	p := parent.child(name)
	// 0755 whatever the umask; the time is left at now, as docker does.
	a.pending[p] = dirMeta{mode: 0o755}
	return parent.attach(name, true, nil), nil
}

// ensureDst makes dst hold directory n, copying the metadata of the lower
// directory it stands for so that the merged view does not change.
func (a *applier) ensureDst(n *node) error {
	if n.inDst {
		return nil
	}
	if err := a.ensureDst(n.parent); err != nil {
		return err
	}
	src := filepath.Join(a.lowers[n.lowers[0]], n.path)
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("reading lower layer: %w", &os.PathError{Op: "lstat", Path: src, Err: err})
	}
	pfd, err := a.dst.dir(n.parent.path)
	if err != nil {
		return err
	}
	if err := unix.Mkdirat(pfd, n.name, 0o755); err != nil {
		return fmt.Errorf("creating directory %s: %w", n.path, err)
	}
	fd, err := openBeneath(pfd, n.name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", n.path, err)
	}
	defer unix.Close(fd)
	if a.opts.Privileged {
		if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("chown %s: %w", n.path, err)
		}
	}
	if err := a.copyXattrs(n.path, src, fd); err != nil {
		return err
	}
	a.pending[n.path] = dirMeta{mode: a.perm(st.Mode), times: statTimes(&st), setTimes: true}
	n.inDst = true
	return nil
}
