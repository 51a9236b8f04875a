package sandbox

import (
	"fmt"
	"path"
	"strings"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// blockedPaths may not be read or written through the file API: kernel
// interfaces, device nodes and credentials (agentkernel's rules). A path is
// blocked if it is one of these or lies beneath one.
var blockedPaths = []string{
	"/proc", "/sys", "/dev",
	"/etc/passwd", "/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d",
	"/root/.ssh",
}

// ValidatePath checks a path given to the file API: absolute, without "."
// or ".." components or NUL bytes, and not a blocked system path.
func ValidatePath(p string) error {
	bad := func(why string) error {
		return fmt.Errorf("sandbox path %q: %s: %w", p, why, errdefs.ErrInvalidArgument)
	}
	if p == "" {
		return bad("empty")
	}
	if !strings.HasPrefix(p, "/") {
		return bad("must be absolute")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return bad("contains a NUL byte")
	}
	if len(p) > 4096 {
		return bad("longer than 4096 bytes")
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return bad("path traversal (..) not allowed")
		}
		if part == "." {
			return bad("\".\" components not allowed")
		}
	}
	clean := path.Clean(p)
	for _, b := range blockedPaths {
		if clean == b || strings.HasPrefix(clean, b+"/") {
			return bad("system path " + b + " is not accessible")
		}
	}
	return nil
}
