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

func TestFromTextRoundTripsEveryKind(t *testing.T) {
	for _, k := range kinds {
		wrapped := fmt.Errorf("context: %w", k)
		if got := FromText(Kind(wrapped).Error()); got != k {
			t.Errorf("FromText(%q) = %v, want %v", k.Error(), got, k)
		}
	}
	if got := FromText("no such kind"); got != ErrInternal {
		t.Errorf("unknown text gave %v, want ErrInternal", got)
	}
}
