package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	xattrs "github.com/agentkernel-go/agentkernel/internal/xattr"
)

const paxXattr = "SCHILY.xattr."

type xattr struct{ name, value string }

// xattrVerdict says whether an image may set xattr name, and why not. Even
// a privileged apply restores only user.*: the layers are mounted inside the
// sandbox's user namespace, where only user.* xattrs belong to it.
func xattrVerdict(name string) (keep bool, why string) {
	switch {
	case strings.HasPrefix(name, "user.overlay."):
		// overlayfs reads these (in userxattr mode) as its own metadata:
		// an image forging opaque or redirect markers could reshape the
		// merged view, or point it at other layers' files.
		return false, "overlayfs metadata is never taken from an image"
	case strings.HasPrefix(name, "user."):
		return true, ""
	case strings.HasPrefix(name, "security."):
		// security.capability included, on purpose: the sandbox runs with
		// no_new_privs, so file capabilities could never be granted anyway,
		// and security.selinux/ima labels are the host's business.
		return false, "security.* xattrs are not restored"
	case strings.HasPrefix(name, "trusted."):
		return false, "trusted.* xattrs are not restored"
	default:
		return false, "only user.* xattrs are restored"
	}
}

// wantedXattrs returns the entry's xattrs an image may set, in a stable
// order, and records the others as skipped.
func (a *applier) wantedXattrs(hdr *tar.Header) []xattr {
	var xs []xattr
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok {
			continue
		}
		if keep, why := xattrVerdict(name); !keep {
			a.skip(hdr.Name, fmt.Sprintf("xattr %s dropped: %s", name, why))
			continue
		}
		xs = append(xs, xattr{name, v})
	}
	slices.SortFunc(xs, func(x, y xattr) int { return strings.Compare(x.name, y.name) })
	return xs
}

// noXattrs records the xattrs of an entry that cannot carry them: the
// kernel allows user.* only on regular files and directories.
func (a *applier) noXattrs(hdr *tar.Header, what string) {
	for _, x := range a.wantedXattrs(hdr) {
		a.skip(hdr.Name, fmt.Sprintf("xattr %s dropped: user xattrs cannot be set on a %s", x.name, what))
	}
}

// setXattrs sets xs on fd. One the filesystem cannot hold (no user xattrs,
// a value too large, a name it rejects) is recorded and left out rather
// than failing the image over metadata nothing in the sandbox relies on.
func (a *applier) setXattrs(hdr *tar.Header, fd int, xs []xattr) error {
	for _, x := range xs {
		err := unix.Fsetxattr(fd, x.name, []byte(x.value), 0)
		switch {
		case err == nil:
		case errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.E2BIG), errors.Is(err, unix.ERANGE),
			errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSPC):
			a.skip(hdr.Name, fmt.Sprintf("xattr %s dropped: %v", x.name, err))
		default:
			return fmt.Errorf("setting xattr %s: %w", x.name, err)
		}
	}
	return nil
}

// copyXattrs copies the xattrs an image may set from the lower-layer file
// src to fd. overlayfs's own user.overlay.* markers (an opaque lower
// directory) stay behind: they describe the lower layer, not this one.
func (a *applier) copyXattrs(p, src string, fd int) error {
	names, err := xattrs.List(func(b []byte) (int, error) { return unix.Llistxattr(src, b) })
	if err != nil {
		return fmt.Errorf("copying xattrs of %s: %w", p, err)
	}
	for _, name := range names {
		if keep, _ := xattrVerdict(name); !keep {
			continue
		}
		v, err := xattrs.Get(func(b []byte) (int, error) { return unix.Lgetxattr(src, name, b) })
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return fmt.Errorf("copying xattr %s of %s: %w", name, p, err)
		}
		if err := unix.Fsetxattr(fd, name, v, 0); err != nil {
			return fmt.Errorf("copying xattr %s of %s: %w", name, p, err)
		}
	}
	return nil
}
