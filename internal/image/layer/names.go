package layer

import (
	"fmt"
	"path"
	"strings"
)

// cleanName turns a tar name or hardlink target into a path relative to the
// image root ("" is the root itself). A leading "/" is dropped, as docker
// does, but a ".." that would climb above the root is an attack, not
// something to clamp: clamping would silently write a different file than
// the one the archive names.
func cleanName(name string) (string, error) {
	depth := 0
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", fmt.Errorf("%w: %q climbs out of the image root", ErrUnsafe, name)
			}
		default:
			depth++
		}
	}
	p := path.Clean("/" + name)[1:]
	return p, nil
}

// splitName splits a cleaned, non-root path into its parent ("" for the
// root) and its last component.
func splitName(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}
