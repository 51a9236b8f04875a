package errdefs

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestTranslationOfWrappedKinds(t *testing.T) {
	for _, tc := range []struct {
		err    error
		exit   int
		status int
	}{
		{nil, 0, http.StatusOK},
		{fmt.Errorf("sandbox %q: %w", "x", ErrNotFound), ExitNotFound, http.StatusNotFound},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", ErrInvalidArgument)), ExitUsage, http.StatusBadRequest},
		{fmt.Errorf("start: %w", ErrFailedPrecondition), ExitConflict, http.StatusConflict},
		{fmt.Errorf("create: %w", ErrAlreadyExists), ExitConflict, http.StatusConflict},
		{fmt.Errorf("backend: %w", ErrNotImplemented), ExitUnavailable, http.StatusNotImplemented},
		{fmt.Errorf("kvm: %w", ErrUnavailable), ExitUnavailable, http.StatusServiceUnavailable},
		{ErrDeadlineExceeded, ExitTimeout, http.StatusGatewayTimeout},
		{errors.New("disk on fire"), ExitFailure, http.StatusInternalServerError},
		// The first kind in the table decides when an error wraps two.
		{errors.Join(ErrNotFound, ErrInvalidArgument), ExitUsage, http.StatusBadRequest},
	} {
		if got := ExitCode(tc.err); got != tc.exit {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.exit)
		}
		if got := HTTPStatus(tc.err); got != tc.status {
			t.Errorf("HTTPStatus(%v) = %d, want %d", tc.err, got, tc.status)
		}
	}
}

func TestFromProcessKeepsMessageAndKind(t *testing.T) {
	for _, k := range kinds {
		sent := fmt.Errorf("sandbox x: %w", k)
		got := FromProcess(sent.Error(), Kind(sent).Error())
		if got.Error() != sent.Error() || Kind(got) != k {
			t.Errorf("%v came back as %q of kind %v", sent, got, Kind(got))
		}
	}
	if got := FromProcess("odd", "no such kind"); Kind(got) != ErrInternal {
		t.Errorf("unknown kind text gave %v, want ErrInternal", Kind(got))
	}
}
