// Package policy declares the seccomp policies of package seccomp and
// assembles them with elastic/go-seccomp-bpf for the machine it runs on.
// `go generate ./internal/seccomp` writes the assembled filters into
// seccomp/programs_<arch>.go, and TestProgramsUpToDate fails while that
// file differs from what this package assembles, so where prebuilt filters
// exist (amd64) no binary links this package and no process pays for the
// library's syscall tables or the assembly. Other architectures assemble
// through it at install time.
//
// Host side; imports nothing of the project but the sandbox model and
// errdefs.
package policy
