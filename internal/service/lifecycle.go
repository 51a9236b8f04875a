package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/procfs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/state"
)

// Create records a new sandbox (not started). Nothing is stored when any
// input is invalid.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (*Info, error) {
	return m.create(ctx, req, "", nil)
}

// create records a sandbox; a non-empty pool key makes it a pool sandbox
// that expires unless a run claims it, an owner an ephemeral one.
func (m *Manager) create(ctx context.Context, req CreateRequest, pool string, owner *state.Owner) (*Info, error) {
	name := req.Name
	if name == "" {
		name = generateName("sb")
	}
	if err := sandbox.ValidateName(name); err != nil {
		return nil, err
	}
	if err := req.Config.Validate(); err != nil {
		return nil, err
	}
	req.Config.Image = AutoImage(req.Config.Image, nil)
	b, err := m.pickBackend(ctx, req.Backend)
	if err != nil {
		return nil, err
	}
	// Held until the record naming the image's layers exists, so an image
	// prune cannot take them in between.
	release, err := m.opts.Images.Hold(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	rootfs, err := m.opts.Images.Resolve(ctx, req.Config.Image)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	rec := &state.Record{
		ID: uuid.NewString(), Name: name, Backend: b.Type(), Status: sandbox.StatusCreated,
		Config: req.Config, RootFS: rootfs, CreatedAt: now, Pool: pool, Owner: owner,
	}
	switch {
	case pool != "":
		exp := now.Add(m.poolIdle())
		rec.ExpiresAt = &exp
	case req.Config.TTL > 0:
		exp := now.Add(req.Config.TTL)
		rec.ExpiresAt = &exp
	}
	if err := m.store.Create(rec); err != nil {
		return nil, err
	}
	m.audit(ctx, name, AuditEntry{Type: AuditCreated, Image: req.Config.Image, Backend: string(b.Type())})
	m.log.Info("sandbox created", "name", name, "id", rec.ID, "backend", b.Type())
	return m.info(ctx, rec), nil
}

func generateName(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// locked loads a record under its lock and runs fn; fn's changes to the
// record are saved when it returns nil and save is set.
func (m *Manager) locked(ctx context.Context, name string, fn func(rec *state.Record) (save bool, err error)) (*state.Record, error) {
	rec, err := m.resolveName(name)
	if err != nil {
		return nil, err
	}
	unlock, err := m.store.Lock(ctx, rec.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Re-read under the lock: another process may have changed it.
	rec, err = m.store.Load(rec.Name)
	if err != nil {
		return nil, err
	}
	save, err := fn(rec)
	if err != nil {
		return nil, err
	}
	if save {
		if err := m.store.Save(rec); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

// reconcile brings a record recorded as running whose sandbox died back to
// stopped, releasing what the backend still holds for it. Caller holds the lock.
func (m *Manager) reconcile(ctx context.Context, b sandbox.Backend, rec *state.Record) (changed bool, err error) {
	if rec.Status != sandbox.StatusRunning || (rec.Runtime != nil && b.Alive(ctx, m.spec(rec), rec.Runtime)) {
		return false, nil
	}
	if rec.Runtime != nil {
		if err := b.Stop(context.WithoutCancel(ctx), m.spec(rec), rec.Runtime); err != nil {
			return false, fmt.Errorf("cleaning up dead sandbox %q: %w", rec.Name, err)
		}
	}
	m.forgetClient(rec)
	rec.Status, rec.Runtime, rec.StartedAt = sandbox.StatusStopped, nil, nil
	return true, nil
}

// Start starts a created or stopped sandbox and injects its files.
func (m *Manager) Start(ctx context.Context, name string) (*Info, error) {
	rec, err := m.locked(ctx, name, func(rec *state.Record) (bool, error) {
		return false, m.startLocked(ctx, rec) // saves itself
	})
	if err != nil {
		return nil, err
	}
	return m.info(ctx, rec), nil
}

func (m *Manager) startLocked(ctx context.Context, rec *state.Record) error {
	b, err := m.backend(rec.Backend)
	if err != nil {
		return err
	}
	if _, err := m.reconcile(ctx, b, rec); err != nil {
		return err
	}
	if err := sandbox.Check(rec.Name, rec.Status, sandbox.OpStart); err != nil {
		return err
	}
	spec := m.spec(rec)
	spec.Network = attacher{m, rec}
	// Sweep what an earlier start, interrupted by a crash, may have left.
	if err := b.Stop(ctx, spec, nil); err != nil {
		return fmt.Errorf("starting sandbox %q: %w", rec.Name, err)
	}
	rt, err := b.Start(ctx, spec)
	if err != nil {
		return fmt.Errorf("starting sandbox %q: %w", rec.Name, err)
	}
	now := time.Now().UTC()
	rec.Status, rec.Runtime, rec.StartedAt = sandbox.StatusRunning, rt, &now
	err = m.injectFiles(ctx, rec)
	if err == nil {
		err = m.store.Save(rec)
	}
	if err != nil {
		// Never leave a sandbox running that the store does not know about.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		m.forgetClient(rec)
		return errors.Join(fmt.Errorf("starting sandbox %q: %w", rec.Name, err), b.Stop(cctx, spec, rt))
	}
	m.audit(ctx, rec.Name, AuditEntry{Type: AuditStarted})
	m.log.Info("sandbox started", "name", rec.Name, "pid", rt.PID)
	return nil
}

// injectFiles writes the config's files into a freshly started sandbox.
func (m *Manager) injectFiles(ctx context.Context, rec *state.Record) error {
	if len(rec.Config.Files) == 0 {
		return nil
	}
	c, err := m.client(rec)
	if err != nil {
		return err
	}
	for _, f := range rec.Config.Files {
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := c.WriteFile(ctx, f.Path, bytes.NewReader(f.Content), mode, true); err != nil {
			return fmt.Errorf("injecting %s: %w", f.Path, agentError(err))
		}
	}
	return nil
}

// stopGrace bounds a graceful stop: the agent signals every process with
// SIGTERM, gives them 5 s, then SIGKILLs what is left and exits.
const stopGrace = 10 * time.Second

// Stop stops a sandbox gracefully (SIGTERM, then SIGKILL after a grace
// period), keeping its filesystem. Stopping a stopped sandbox is a no-op.
func (m *Manager) Stop(ctx context.Context, name string) (*Info, error) {
	rec, err := m.locked(ctx, name, func(rec *state.Record) (bool, error) {
		m.shutdownAgent(ctx, rec)
		return true, m.stopLocked(ctx, rec)
	})
	if err != nil {
		return nil, err
	}
	return m.info(ctx, rec), nil
}

// shutdownAgent asks a running sandbox's agent to end its processes
// gracefully and waits (bounded) for the sandbox to exit; stopLocked then
// kills whatever is left. Failures only make the stop less graceful.
func (m *Manager) shutdownAgent(ctx context.Context, rec *state.Record) {
	if !m.alive(ctx, rec) {
		return
	}
	c, err := m.client(rec)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		m.log.Debug("graceful stop", "name", rec.Name, "err", err)
		return
	}
	for m.alive(ctx, rec) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// stopLocked kills a sandbox's processes and releases its runtime
// resources. Caller holds the lock.
func (m *Manager) stopLocked(ctx context.Context, rec *state.Record) error {
	if err := sandbox.Check(rec.Name, rec.Status, sandbox.OpStop); err != nil {
		return err
	}
	b, err := m.backend(rec.Backend)
	if err != nil {
		return err
	}
	m.forgetClient(rec)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	// With no runtime recorded this still sweeps what a start interrupted
	// by a crash may have left.
	if err := b.Stop(cctx, m.spec(rec), rec.Runtime); err != nil {
		return fmt.Errorf("stopping sandbox %q: %w", rec.Name, err)
	}
	if rec.Runtime != nil {
		m.detachNetwork(cctx, rec)
	}
	if rec.Status == sandbox.StatusRunning {
		rec.Status = sandbox.StatusStopped
		m.audit(ctx, rec.Name, AuditEntry{Type: AuditStopped})
		m.log.Info("sandbox stopped", "name", rec.Name)
	}
	rec.Runtime, rec.StartedAt = nil, nil
	return nil
}

// Remove stops (if needed) and deletes a sandbox and everything it owns.
func (m *Manager) Remove(ctx context.Context, name string) error {
	_, err := m.locked(ctx, name, func(rec *state.Record) (bool, error) {
		return false, m.removeLocked(ctx, rec)
	})
	return err
}

func (m *Manager) removeLocked(ctx context.Context, rec *state.Record) error {
	if err := m.stopLocked(ctx, rec); err != nil {
		return err
	}
	b, err := m.backend(rec.Backend)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := b.Remove(cctx, m.spec(rec)); err != nil {
		return fmt.Errorf("removing sandbox %q: %w", rec.Name, err)
	}
	if err := m.store.Delete(rec.Name); err != nil {
		return err
	}
	m.log.Info("sandbox removed", "name", rec.Name)
	return nil
}

// GC removes expired sandboxes, brings dead ones to stopped (releasing what
// they held) and deletes leftovers of crashed operations. It returns the
// names of the sandboxes it removed.
func (m *Manager) GC(ctx context.Context) ([]string, error) {
	recs, err := m.store.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	now := time.Now()
	for _, r := range recs {
		// A pool sandbox whose agent stopped itself (idle) is as good as
		// expired, and so is an ephemeral one whose owner is gone.
		expired := r.ExpiresAt != nil && now.After(*r.ExpiresAt) ||
			r.Pool != "" && r.Status == sandbox.StatusRunning && !m.alive(ctx, r) ||
			r.Owner != nil && !procfs.Alive(r.Owner.PID, r.Owner.StartTime)
		_, err := m.locked(ctx, r.Name, func(rec *state.Record) (bool, error) {
			if expired {
				return false, m.removeLocked(ctx, rec)
			}
			b, err := m.backend(rec.Backend)
			if err != nil {
				return false, nil // built without this backend: leave it alone
			}
			return m.reconcile(ctx, b, rec)
		})
		switch {
		case err != nil && !errors.Is(err, errdefs.ErrNotFound):
			errs = append(errs, err)
		case err == nil && expired:
			removed = append(removed, r.Name)
		}
	}
	m.store.RemoveStale(time.Hour)
	return removed, errors.Join(errs...)
}
