package service

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/state"
)

// MaxExtend bounds one ExtendTTL: a typo such as "1000d" is a mistake, not
// a wish for a sandbox that outlives the host.
const MaxExtend = 30 * 24 * time.Hour

// ExtendTTL adds by to a sandbox's expiry and returns the sandbox. The new
// expiry is by after the current one, or after now when the sandbox has no
// expiry or it has already passed. by must be positive and at most
// MaxExtend. A warm-pool spare, which belongs to the pool, cannot be
// extended.
func (m *Manager) ExtendTTL(ctx context.Context, name string, by time.Duration) (*Info, error) {
	if by <= 0 || by > MaxExtend {
		return nil, fmt.Errorf("extending by %s: want more than 0 and at most %s: %w", by, MaxExtend, errdefs.ErrInvalidArgument)
	}
	rec, err := m.locked(ctx, name, func(rec *state.Record) (bool, error) {
		if rec.Pool != "" {
			return false, fmt.Errorf("sandbox %q is a warm-pool spare: %w", rec.Name, errdefs.ErrFailedPrecondition)
		}
		base := time.Now().UTC()
		if rec.ExpiresAt != nil && rec.ExpiresAt.After(base) {
			base = rec.ExpiresAt.UTC()
		}
		exp := base.Add(by)
		rec.ExpiresAt = &exp
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	m.audit(ctx, rec.Name, AuditEntry{Type: AuditTTLExtended, ExpiresAt: rec.ExpiresAt})
	m.log.Info("sandbox TTL extended", "name", rec.Name, "by", by, "expires_at", rec.ExpiresAt)
	return m.info(ctx, rec), nil
}

// ParseDuration reads a duration as agentkernel's clients write it: Go's
// form (90s, 30m, 1h30m) or whole or fractional days (2d, 1.5d). It
// must be positive.
func ParseDuration(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n float64
		n, err = strconv.ParseFloat(days, 64)
		if err == nil && (n > float64(1<<62)/float64(24*time.Hour) || n != n) {
			err = strconv.ErrRange
		}
		d = time.Duration(n * 24 * float64(time.Hour))
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("duration %q: want a positive duration such as 30m, 1h or 2d: %w", s, errdefs.ErrInvalidArgument)
	}
	return d, nil
}
