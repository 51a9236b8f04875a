package seccomp

import (
	"fmt"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// Options choose a filter.
type Options struct {
	// Profile is sandbox.SeccompDefault, SeccompStrict or SeccompUnconfined.
	Profile string
	// AllowPtrace permits ptrace and its relatives (process_vm_*, kcmp,
	// pidfd_getfd) and personality(ADDR_NO_RANDOMIZE), for debuggers. It is
	// ignored by the strict profile.
	AllowPtrace bool
}

// Variant names the filter o selects: "default", "default+ptrace" or
// "strict", or "" for none (unconfined).
func (o Options) Variant() (string, error) {
	switch o.Profile {
	case sandbox.SeccompUnconfined:
		return "", nil
	case sandbox.SeccompDefault, "":
		if o.AllowPtrace {
			return "default+ptrace", nil
		}
		return "default", nil
	case sandbox.SeccompStrict:
		return "strict", nil
	}
	return "", fmt.Errorf("seccomp profile %q: %w", o.Profile, errdefs.ErrInvalidArgument)
}

// Variants lists every filter variant, for the generator of the prebuilt
// filters.
func Variants() map[string]Options {
	return map[string]Options{
		"default":        {Profile: sandbox.SeccompDefault},
		"default+ptrace": {Profile: sandbox.SeccompDefault, AllowPtrace: true},
		"strict":         {Profile: sandbox.SeccompStrict},
	}
}
