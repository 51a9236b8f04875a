// Package errdefs is the project's small error vocabulary. Every layer wraps
// one of these kinds with %w and context; only the edges (CLI exit codes,
// HTTP statuses, MCP results, agent statuses) translate them, each in one
// function.
//
// Host and agent side; imports only the standard library.
package errdefs

import (
	"errors"
	"net/http"
)

// The error kinds. Wrap them: fmt.Errorf("sandbox %q: %w", name, errdefs.ErrNotFound).
var (
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrUnavailable        = errors.New("unavailable")
	ErrNotImplemented     = errors.New("not yet supported")
	ErrPermissionDenied   = errors.New("permission denied")
	ErrDeadlineExceeded   = errors.New("deadline exceeded")
	ErrCanceled           = errors.New("canceled")
	ErrInternal           = errors.New("internal error")
)

// kinds is ordered: the first kind an error wraps decides its translation.
var kinds = []error{
	ErrInvalidArgument, ErrNotFound, ErrAlreadyExists, ErrFailedPrecondition,
	ErrUnavailable, ErrNotImplemented, ErrPermissionDenied, ErrDeadlineExceeded,
	ErrCanceled, ErrInternal,
}

// Kind returns the sentinel kind err wraps, or ErrInternal.
func Kind(err error) error {
	for _, k := range kinds {
		if errors.Is(err, k) {
			return k
		}
	}
	return ErrInternal
}

// FromProcess rebuilds an error that crossed a process boundary as its
// message and the text of its kind (Kind(err).Error()): it prints as msg
// and matches its kind (ErrInternal for unknown text) with errors.Is.
func FromProcess(msg, kind string) error {
	e := &processError{msg: msg, kind: ErrInternal}
	for _, k := range kinds {
		if k.Error() == kind {
			e.kind = k
		}
	}
	return e
}

type processError struct {
	msg  string
	kind error
}

func (e *processError) Error() string { return e.msg }
func (e *processError) Unwrap() error { return e.kind }

// Exit codes of the agentkernel CLI for failures of agentkernel itself (a
// command run in a sandbox passes its own exit code through instead).
const (
	ExitFailure     = 1 // anything else
	ExitUsage       = 2 // bad flags, arguments or input
	ExitNotFound    = 3 // unknown sandbox, image, ...
	ExitConflict    = 4 // already exists, wrong lifecycle state
	ExitUnavailable = 5 // backend cannot run here, not yet supported
	ExitTimeout     = 124
	ExitCannotExec  = 126 // command found but not executable
	ExitNoCommand   = 127 // command not found in the sandbox
)

// ExitCode maps an error to the CLI's exit code.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	switch Kind(err) {
	case ErrInvalidArgument:
		return ExitUsage
	case ErrNotFound:
		return ExitNotFound
	case ErrAlreadyExists, ErrFailedPrecondition:
		return ExitConflict
	case ErrUnavailable, ErrNotImplemented:
		return ExitUnavailable
	case ErrDeadlineExceeded:
		return ExitTimeout
	}
	return ExitFailure
}

// HTTPStatus maps an error to an HTTP status code.
func HTTPStatus(err error) int {
	if err == nil {
		return http.StatusOK
	}
	switch Kind(err) {
	case ErrInvalidArgument:
		return http.StatusBadRequest
	case ErrNotFound:
		return http.StatusNotFound
	case ErrAlreadyExists, ErrFailedPrecondition:
		return http.StatusConflict
	case ErrUnavailable:
		return http.StatusServiceUnavailable
	case ErrNotImplemented:
		return http.StatusNotImplemented
	case ErrPermissionDenied:
		return http.StatusForbidden
	case ErrDeadlineExceeded:
		return http.StatusGatewayTimeout
	case ErrCanceled:
		return 499 // client closed request
	}
	return http.StatusInternalServerError
}
