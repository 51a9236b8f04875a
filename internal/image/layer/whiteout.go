package layer

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	aufsPrefix     = ".wh..wh." // aufs bookkeeping (.wh..wh.plnk, ...), meaningless here
)

// whiteout turns the OCI whiteout file dir/base into overlayfs's form.
func (a *applier) whiteout(dir, base string) error {
	if base == opaqueMarker {
		return a.opaque(dir)
	}
	if strings.HasPrefix(base, aufsPrefix) {
		a.skip(joinName(dir, base), "aufs metadata")
		return nil
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: whiteout %q names no entry of its directory", ErrUnsafe, base)
	}
	parent, err := a.resolveDir(dir, true)
	if err != nil {
		return err
	}
	pfd, err := a.dst.dir(parent.path)
	if err != nil {
		return err
	}
	p := parent.child(name)
	st, ok, err := statAt(pfd, name)
	if err != nil {
		return err
	}
	// dst started empty, so whatever it holds at name this layer created
	// (an entry, or a parent of one). A whiteout only deletes from the
	// layers below, never this layer's own entry: a non-directory here
	// already hides everything below it, and a directory is made opaque so
	// it keeps this layer's contents and hides the lower ones.
	switch {
	case ok && isWhiteout(&st):
	case ok && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		if err := setOpaque(pfd, name); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	case ok:
	default:
		if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
			if errors.Is(err, unix.EPERM) {
				return fmt.Errorf("creating whiteout %s: whiteouts need root (CAP_MKNOD) on this kernel: %w", p, err)
			}
			return fmt.Errorf("creating whiteout %s: %w", p, err)
		}
	}
	parent.forgetChild(name)
	a.stats.Whiteouts++
	return nil
}

// opaque marks dir so that overlayfs shows none of the lower layers' entries
// in it, creating it (as the merged view has it) if dst lacks it.
func (a *applier) opaque(dir string) error {
	n, err := a.resolveDir(dir, true)
	if err != nil {
		return err
	}
	if n.parent == nil {
		a.skip(joinName(dir, opaqueMarker), "overlayfs ignores an opaque marker on the image root")
		return nil
	}
	pfd, err := a.dst.dir(n.parent.path)
	if err != nil {
		return err
	}
	if err := setOpaque(pfd, n.name); err != nil {
		return fmt.Errorf("%s: %w", n.path, err)
	}
	n.parent.forgetChild(n.name)
	a.stats.Whiteouts++
	return nil
}

// setOpaque sets user.overlay.opaque, the form overlayfs reads when mounted
// with userxattr (trusted.overlay.* would need CAP_SYS_ADMIN in the initial
// user namespace, which the sandbox's mount does not have).
func setOpaque(dirfd int, name string) error {
	fd, err := openBeneath(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("opening directory: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("marking opaque: %w", err)
	}
	return nil
}

func joinName(dir, base string) string {
	if dir == "" {
		return base
	}
	return dir + "/" + base
}
