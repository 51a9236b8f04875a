package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/state"
)

func clientKey(rec *state.Record) string {
	return rec.ID + "/" + strconv.FormatUint(rec.Runtime.StartTime, 10)
}

// client returns a (cached) agent client for a running sandbox.
func (m *Manager) client(rec *state.Record) (*agentv1.Client, error) {
	if rec.Runtime == nil {
		return nil, sandbox.Check(rec.Name, rec.Status, sandbox.OpExec)
	}
	b, err := m.backend(rec.Backend)
	if err != nil {
		return nil, err
	}
	key := clientKey(rec)
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.clients[key]; ok {
		return c, nil
	}
	spec, rt := m.spec(rec), *rec.Runtime
	c := agentv1.NewClient(func(ctx context.Context) (net.Conn, error) {
		return b.Dial(ctx, spec, &rt)
	})
	m.clients[key] = c
	return c, nil
}

func (m *Manager) forgetClient(rec *state.Record) {
	if rec.Runtime == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.clients[clientKey(rec)]; ok {
		c.Close()
		delete(m.clients, clientKey(rec))
	}
}

// running loads a sandbox that must be running for op and returns its agent client.
func (m *Manager) running(ctx context.Context, name string, op sandbox.Operation) (*state.Record, *agentv1.Client, error) {
	rec, err := m.resolveName(name)
	if err != nil {
		return nil, nil, err
	}
	if err := sandbox.Check(rec.Name, m.observed(ctx, rec), op); err != nil {
		return nil, nil, err
	}
	c, err := m.client(rec)
	if err != nil {
		return nil, nil, err
	}
	return rec, c, nil
}

// agentErrorKinds is the agent edge: protocol error codes to error kinds.
var agentErrorKinds = map[string]error{
	agentv1.CodeInvalidArgument:    errdefs.ErrInvalidArgument,
	agentv1.CodeNotFound:           errdefs.ErrNotFound,
	agentv1.CodeAlreadyExists:      errdefs.ErrAlreadyExists,
	agentv1.CodeFailedPrecondition: errdefs.ErrFailedPrecondition,
	agentv1.CodePermissionDenied:   errdefs.ErrPermissionDenied,
	agentv1.CodeCommandNotFound:    errdefs.ErrNotFound,
	agentv1.CodeNotExecutable:      errdefs.ErrPermissionDenied,
	agentv1.CodeUnavailable:        errdefs.ErrUnavailable,
	agentv1.CodeInternal:           errdefs.ErrInternal,
}

// kindError keeps the agent's *Error (callers check its Code, e.g. for exit
// 127) while also wrapping the matching error kind.
type kindError struct {
	agent *agentv1.Error
	kind  error
}

func (e *kindError) Error() string   { return e.agent.Message }
func (e *kindError) Unwrap() []error { return []error{e.agent, e.kind} }

// agentError translates an error from the agent client.
func agentError(err error) error {
	if err == nil {
		return nil
	}
	var ae *agentv1.Error
	if errors.As(err, &ae) {
		kind, ok := agentErrorKinds[ae.Code]
		if !ok {
			kind = errdefs.ErrInternal
		}
		return &kindError{agent: ae, kind: kind}
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", errdefs.ErrCanceled, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", errdefs.ErrDeadlineExceeded, err)
	}
	if errdefs.Kind(err) != errdefs.ErrInternal {
		return err
	}
	return fmt.Errorf("talking to the sandbox agent: %w: %w", errdefs.ErrUnavailable, err)
}
