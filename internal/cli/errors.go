package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// This file is the CLI's error edge: the one place errors become exit codes
// and the one line printed on stderr.

// usageError is a mistake in how agentkernel was invoked: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
func (e usageError) Unwrap() error { return errdefs.ErrInvalidArgument }

func usagef(format string, args ...any) error {
	return usageError{msg: fmt.Sprintf(format, args...)}
}

// runError wraps an error returned by a command's own work (as opposed to
// cobra rejecting the command line before it ran).
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// exitStatus ends the CLI with a given code; msg (if any) was printed already
// or is printed as is.
type exitStatus struct {
	code int
	msg  string
}

func (e *exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// interrupted is the error of a command cancelled by a signal.
func interrupted(sig os.Signal) error {
	code, name := 130, sig.String()
	if s, ok := sig.(syscall.Signal); ok {
		code = 128 + int(s)
		if n := unix.SignalName(s); n != "" {
			name = n
		}
	}
	return &exitStatus{code: code, msg: "interrupted (" + name + ")"}
}

// exit prints err (one line) and returns the process exit code.
func (a *app) exit(err error) int {
	if err == nil {
		return 0
	}
	var st *exitStatus
	if errors.As(err, &st) {
		if st.msg != "" {
			fmt.Fprintf(a.stderr, "agentkernel: %s\n", oneLine(st.msg))
		}
		return st.code
	}
	msg := err.Error()
	var re *runError
	if !errors.As(err, &re) {
		msg = suggestionLine(msg)
	}
	fmt.Fprintf(a.stderr, "agentkernel: %s\n", oneLine(msg))
	return exitCode(err)
}

// suggestionLine folds cobra's multi-line "unknown command" message with its
// suggestions into one line.
func suggestionLine(msg string) string {
	head, rest, ok := strings.Cut(msg, "\n\nDid you mean this?\n")
	if !ok {
		return msg
	}
	return fmt.Sprintf("%s (did you mean %s?)", head, strings.Join(strings.Fields(rest), " or "))
}

// exitCode maps an error to the CLI's exit code.
func exitCode(err error) int {
	var re *runError
	if !errors.As(err, &re) {
		// cobra refused the command line: unknown command or flag, bad
		// flag value, wrong number of arguments.
		return errdefs.ExitUsage
	}
	var ae *agentv1.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case agentv1.CodeCommandNotFound:
			return errdefs.ExitNoCommand
		case agentv1.CodeNotExecutable:
			return errdefs.ExitCannotExec
		}
		if errdefs.Kind(err) == errdefs.ErrInternal {
			return errdefs.ExitCode(agentKind(ae.Code))
		}
	}
	return errdefs.ExitCode(err)
}

// agentKind maps an agent error code to an error kind, for agent errors the
// manager passed through unwrapped.
func agentKind(code string) error {
	switch code {
	case agentv1.CodeInvalidArgument:
		return errdefs.ErrInvalidArgument
	case agentv1.CodeNotFound:
		return errdefs.ErrNotFound
	case agentv1.CodeAlreadyExists:
		return errdefs.ErrAlreadyExists
	case agentv1.CodeFailedPrecondition:
		return errdefs.ErrFailedPrecondition
	case agentv1.CodePermissionDenied:
		return errdefs.ErrPermissionDenied
	case agentv1.CodeUnavailable:
		return errdefs.ErrUnavailable
	}
	return errdefs.ErrInternal
}

// isNotFound reports whether err says a thing does not exist, whether the
// manager translated the agent's answer or passed it through.
func isNotFound(err error) bool {
	var ae *agentv1.Error
	if errors.As(err, &ae) {
		return ae.Code == agentv1.CodeNotFound
	}
	return errors.Is(err, errdefs.ErrNotFound)
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", "")
	return strings.ReplaceAll(s, "\n", "; ")
}
