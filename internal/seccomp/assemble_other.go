//go:build linux && !amd64

package seccomp

import (
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/seccomp/policy"
)

// program assembles the filter now: this architecture has no prebuilt
// filters (go generate on it would write them).
func program(_ string, o Options) ([]unix.SockFilter, error) {
	raw, err := policy.Program(runtime.GOARCH, policy.Options{Profile: o.Profile, AllowPtrace: o.AllowPtrace})
	if err != nil {
		return nil, err
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return prog, nil
}
