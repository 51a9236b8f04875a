package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/state"
)

// withDefaults fills what spec leaves empty from the sandbox's config and
// image: environment (image, then config, then spec; later wins), working
// directory and user.
func withDefaults(rec *state.Record, spec agentv1.ExecSpec) agentv1.ExecSpec {
	env := agentv1.MergeEnv(rec.RootFS.Config.Env, rec.Config.Env, spec.Env)
	spec.Env = env
	if spec.Dir == "" {
		spec.Dir = rec.Config.WorkDir
	}
	if spec.Dir == "" {
		spec.Dir = rec.RootFS.Config.WorkingDir
	}
	if spec.User == "" {
		spec.User = rec.Config.User
	}
	if spec.User == "" {
		spec.User = rec.RootFS.Config.User
	}
	return spec
}

// Exec runs a command in a running sandbox, streaming its output.
func (m *Manager) Exec(ctx context.Context, name string, req ExecRequest) (agentv1.ExitStatus, error) {
	rec, c, err := m.running(ctx, name, sandbox.OpExec)
	if err != nil {
		return agentv1.ExitStatus{}, err
	}
	return m.exec(ctx, rec, c, req)
}

func (m *Manager) exec(ctx context.Context, rec *state.Record, c *agentv1.Client, req ExecRequest) (agentv1.ExitStatus, error) {
	spec := withDefaults(rec, req.Spec)
	if err := spec.Validate(); err != nil {
		return agentv1.ExitStatus{}, agentError(err)
	}
	spec.Stdin = req.Stdin != nil
	start := time.Now()
	st, err := c.Exec(ctx, spec, req.Stdin, req.Stdout, req.Stderr)
	if err != nil {
		err = fmt.Errorf("exec in sandbox %q: %w", rec.Name, agentError(err))
	}
	if rec.Owner == nil {
		// An ephemeral run's log would go with its sandbox at once: its
		// command is not worth a write on run's path.
		m.auditCommand(ctx, rec.Name, AuditCommand, spec.Args, start, st.Code, err)
	}
	return st, err
}

// Run runs one command in an ephemeral sandbox: created and started for it
// (or claimed from the warm pool, see pool.go) and removed afterwards unless
// req.Keep — also when ctx is cancelled.
func (m *Manager) Run(ctx context.Context, req RunRequest) (*Info, agentv1.ExitStatus, error) {
	var none agentv1.ExitStatus
	if err := req.Exec.Spec.Validate(); err != nil {
		return nil, none, agentError(err)
	}
	req.Create.Config.Image = AutoImage(req.Create.Config.Image, req.Exec.Spec.Args)
	key, poolReq, pooled := m.poolable(req)
	var rec *state.Record
	specWritten := func() {}
	if pooled {
		// Recording the configuration for the refill overlaps the claim and
		// the command; the maintainer that reads it starts only after.
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := m.writePoolSpec(key, poolReq); err != nil {
				m.log.Warn("recording the pool configuration", "err", err)
			}
		}()
		specWritten = func() { <-done }
		defer specWritten()
		rec = m.claim(ctx, key, req.Create.Config)
	}
	if rec == nil {
		create := req.Create
		if create.Name == "" {
			create.Name = generateName("run")
		}
		owner := m.self
		if req.Keep {
			owner = nil
		}
		if _, err := m.create(ctx, create, "", owner); err != nil {
			return nil, none, err
		}
		if _, err := m.Start(ctx, create.Name); err != nil {
			// A sandbox that cannot start is no use to keep either.
			return nil, none, errors.Join(err, m.removeNow(ctx, create.Name))
		}
		var err error
		if rec, err = m.resolveName(create.Name); err != nil {
			return nil, none, err
		}
	}
	info := m.info(ctx, rec)
	c, err := m.client(rec)
	if err != nil {
		specWritten()
		return info, none, errors.Join(err, m.cleanupRun(ctx, req, pooled, rec))
	}
	st, err := m.exec(ctx, rec, c, req.Exec)
	specWritten()
	if cerr := m.cleanupRun(ctx, req, pooled, rec); cerr != nil {
		err = errors.Join(err, fmt.Errorf("removing ephemeral sandbox: %w", cerr))
	}
	return info, st, err
}

// cleanupRun removes a run's sandbox: in the background when the pool is
// in use, else right away (under its own timeout if ctx was cancelled).
func (m *Manager) cleanupRun(ctx context.Context, req RunRequest, pooled bool, rec *state.Record) error {
	if req.Keep {
		return nil
	}
	if pooled {
		return m.retire(ctx, rec)
	}
	return m.removeNow(ctx, rec.Name)
}

// removeNow removes a sandbox even when ctx was cancelled.
func (m *Manager) removeNow(ctx context.Context, name string) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	return m.Remove(cctx, name)
}

// Attach starts an interactive process the caller drives (PTY, resize, signals).
// The caller must Wait on the session.
func (m *Manager) Attach(ctx context.Context, name string, spec agentv1.ExecSpec) (*agentv1.Session, error) {
	rec, c, err := m.running(ctx, name, sandbox.OpExec)
	if err != nil {
		return nil, err
	}
	spec = withDefaults(rec, spec)
	if err := spec.Validate(); err != nil {
		return nil, agentError(err)
	}
	s, err := c.StartExec(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("exec in sandbox %q: %w", rec.Name, agentError(err))
	}
	m.audit(ctx, rec.Name, AuditEntry{Type: AuditSessionAttached, Command: spec.Args})
	return s, nil
}

// StartProcess starts a detached process.
func (m *Manager) StartProcess(ctx context.Context, name string, spec agentv1.ExecSpec) (agentv1.ProcessInfo, error) {
	rec, c, err := m.running(ctx, name, sandbox.OpExec)
	if err != nil {
		return agentv1.ProcessInfo{}, err
	}
	spec = withDefaults(rec, spec)
	if err := spec.Validate(); err != nil {
		return agentv1.ProcessInfo{}, agentError(err)
	}
	p, err := c.StartProcess(ctx, spec)
	if err == nil {
		m.audit(ctx, rec.Name, AuditEntry{Type: AuditDetachedStarted, Command: spec.Args, ProcessID: p.ID})
	}
	return p, agentError(err)
}

// Processes lists a sandbox's detached processes.
func (m *Manager) Processes(ctx context.Context, name string) ([]agentv1.ProcessInfo, error) {
	_, c, err := m.running(ctx, name, sandbox.OpExec)
	if err != nil {
		return nil, err
	}
	ps, err := c.Processes(ctx)
	return ps, agentError(err)
}

// Process returns one detached process.
func (m *Manager) Process(ctx context.Context, name, id string) (agentv1.ProcessInfo, error) {
	_, c, err := m.running(ctx, name, sandbox.OpExec)
	if err != nil {
		return agentv1.ProcessInfo{}, err
	}
	p, err := c.Process(ctx, id)
	return p, agentError(err)
}

// ProcessLogs returns a detached process's stdout or stderr so far, and how
// many bytes were dropped from its head.
func (m *Manager) ProcessLogs(ctx context.Context, name, id, stream string) ([]byte, int64, error) {
	if stream != "stdout" && stream != "stderr" {
		return nil, 0, fmt.Errorf("log stream %q: want stdout or stderr: %w", stream, errdefs.ErrInvalidArgument)
	}
	_, c, err := m.running(ctx, name, sandbox.OpExec)
	if err != nil {
		return nil, 0, err
	}
	b, n, err := c.ProcessLogs(ctx, id, stream)
	return b, n, agentError(err)
}

// KillProcess signals a detached process.
func (m *Manager) KillProcess(ctx context.Context, name, id string, sig int) (agentv1.ProcessInfo, error) {
	if sig <= 0 || sig > 64 {
		return agentv1.ProcessInfo{}, fmt.Errorf("signal %d: %w", sig, errdefs.ErrInvalidArgument)
	}
	rec, c, err := m.running(ctx, name, sandbox.OpExec)
	if err != nil {
		return agentv1.ProcessInfo{}, err
	}
	p, err := c.KillProcess(ctx, id, sig)
	if err == nil {
		m.audit(ctx, rec.Name, AuditEntry{Type: AuditDetachedKilled, ProcessID: id, Signal: sig})
	}
	return p, agentError(err)
}
