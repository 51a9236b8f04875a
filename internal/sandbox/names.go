package sandbox

import (
	"fmt"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// MaxNameLen is the longest sandbox name (a DNS label, so it can be a hostname).
const MaxNameLen = 63

// ValidateName checks a sandbox name: 1–63 characters of [A-Za-z0-9_-],
// starting and ending with a letter or digit.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("sandbox name is empty: %w", errdefs.ErrInvalidArgument)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("sandbox name %.20q... is %d characters, at most %d allowed: %w",
			name, len(name), MaxNameLen, errdefs.ErrInvalidArgument)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && c != '-' && c != '_' {
			return fmt.Errorf("sandbox name %q: character %q not allowed (use letters, digits, - and _): %w",
				name, c, errdefs.ErrInvalidArgument)
		}
		if !alnum && (i == 0 || i == len(name)-1) {
			return fmt.Errorf("sandbox name %q must start and end with a letter or digit: %w",
				name, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}
