package service

// The warm pool makes `run` fast without a daemon. Run claims a sandbox
// that an earlier run left started for the same configuration, and after
// its command hands the removal and a refill to Options.Background (a
// detached process in the CLI), so neither start-up nor teardown is on the
// caller's path. Pool sandboxes stop themselves after PoolIdle unused (the
// agent's idle exit), and a configuration nobody ran for PoolIdle is not
// refilled: an idle machine ends up with no pool at all.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/state"
)

const defaultPoolIdle = 5 * time.Minute

func (m *Manager) poolIdle() time.Duration {
	if m.opts.PoolIdle > 0 {
		return m.opts.PoolIdle
	}
	return defaultPoolIdle
}

func (m *Manager) poolDir() string { return filepath.Join(m.opts.Root, "pool") }

// poolable reports whether a run may use the pool, and with which key and
// sandbox config. Exec-time settings (env, workdir, user) do not split the
// pool; host mounts and injected files do not pool at all. The key holds
// the backend as asked for (empty: auto-detected), so claiming needs no probe.
func (m *Manager) poolable(req RunRequest) (key string, create CreateRequest, ok bool) {
	c := req.Create
	if m.opts.PoolSize <= 0 || m.opts.Background == nil || c.Name != "" || req.Keep ||
		len(c.Config.Mounts) > 0 || len(c.Config.Files) > 0 || c.Config.TTL > 0 {
		return "", CreateRequest{}, false
	}
	cfg := c.Config
	cfg.Env, cfg.WorkDir, cfg.User = nil, "", ""
	cfg.IdleTimeout = m.poolIdle()
	backend := c.Backend
	if backend == "" {
		backend = m.opts.DefaultBackend
	}
	create = CreateRequest{Backend: backend, Config: cfg}
	raw, _ := json.Marshal(create)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8]), create, true
}

// claim takes a live pool sandbox of key for the caller, giving it the
// request's exec-time settings. It never waits for a lock another process holds.
func (m *Manager) claim(ctx context.Context, key string, cfg sandbox.Config) *state.Record {
	// Pool sandboxes carry their key in their name: no other sandbox's
	// record is read, however many there are.
	names, err := m.store.Names()
	if err != nil {
		return nil
	}
	for _, name := range names {
		if !strings.HasPrefix(name, poolPrefix(key)) {
			continue
		}
		unlock, err := m.store.TryLock(name)
		if err != nil {
			continue
		}
		rec, err := m.store.Load(name)
		if err == nil && rec.Pool == key && m.alive(ctx, rec) {
			rec.Pool, rec.ExpiresAt, rec.Owner = "", nil, m.self
			rec.Config.Env, rec.Config.WorkDir, rec.Config.User = cfg.Env, cfg.WorkDir, cfg.User
			if m.store.SaveVolatile(rec) == nil {
				unlock()
				return rec
			}
		}
		unlock()
	}
	return nil
}

// poolPrefix starts the names of key's pool sandboxes ("run-<key>-…",
// with generateName's "-").
func poolPrefix(key string) string {
	return "run-" + key[:6]
}

// writePoolSpec records (or refreshes the use time of) a pooled configuration.
func (m *Manager) writePoolSpec(key string, create CreateRequest) error {
	path := filepath.Join(m.poolDir(), key+".json")
	now := time.Now()
	if err := os.Chtimes(path, now, now); err == nil {
		return nil
	}
	if err := os.MkdirAll(m.poolDir(), 0o700); err != nil {
		return err
	}
	raw, err := json.Marshal(create)
	if err != nil {
		return err
	}
	tmp := path + ".tmp-" + generateName("w")
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// retire hands a finished run's sandbox to a lingering maintainer, or to a
// new one (Options.Background), for removal. If no maintainer can take
// it, it removes the sandbox itself; if the maintainer dies, gc removes it
// (its owner is gone by then).
func (m *Manager) retire(ctx context.Context, rec *state.Record) error {
	m.forgetClient(rec)
	if m.HandOff(rec.Name) == nil {
		return nil
	}
	err := m.opts.Background(rec.Name)
	if err == nil {
		return nil
	}
	m.log.Warn("starting the pool maintainer", "err", err)
	return m.removeNow(ctx, rec.Name)
}

// MaintainPool removes finished and expired sandboxes (gc) and starts pool
// sandboxes until every configuration used within PoolIdle has PoolSize
// of them. Maintainers of one data root run one at a time.
func (m *Manager) MaintainPool(ctx context.Context) error {
	unlock, err := m.lockPool()
	if err != nil {
		return err
	}
	defer unlock()
	_, gcErr := m.GC(ctx)
	specs, _ := filepath.Glob(filepath.Join(m.poolDir(), "*.json"))
	var errs []error
	for _, path := range specs {
		key := strings.TrimSuffix(filepath.Base(path), ".json")
		if err := m.fillPool(ctx, key, path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, gcErr)...)
}

func (m *Manager) fillPool(ctx context.Context, key, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	if time.Since(fi.ModTime()) > m.poolIdle() {
		return os.Remove(path) // nobody ran this configuration lately
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var create CreateRequest
	if err := json.Unmarshal(raw, &create); err != nil {
		os.Remove(path)
		return fmt.Errorf("pool spec %s: %w", path, err)
	}
	recs, err := m.store.List()
	if err != nil {
		return err
	}
	have := 0
	for _, r := range recs {
		if r.Pool == key && m.alive(ctx, r) {
			have++
		}
	}
	for ; have < m.opts.PoolSize; have++ {
		create.Name = generateName(poolPrefix(key))
		if _, err := m.create(ctx, create, key, nil); err != nil {
			return err
		}
		if _, err := m.Start(ctx, create.Name); err != nil {
			return errors.Join(err, m.Remove(context.WithoutCancel(ctx), create.Name))
		}
	}
	return nil
}

// lockPool serialises pool maintenance between the processes sharing the
// data root. The returned function releases the lock.
func (m *Manager) lockPool() (func(), error) {
	if err := os.MkdirAll(m.poolDir(), 0o700); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(m.poolDir(), "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("locking the pool: %w", err)
	}
	return func() { lock.Close() }, nil
}

// DrainPool removes every unclaimed pool sandbox and forgets the pooled
// configurations, returning the names removed. It stops a lingering
// maintainer and waits for one at work; one that runs later finds nothing
// to refill.
func (m *Manager) DrainPool(ctx context.Context) ([]string, error) {
	if err := m.StopPoolMaintainer(ctx); err != nil {
		return nil, err
	}
	unlock, err := m.lockPool()
	if err != nil {
		return nil, err
	}
	defer unlock()
	specs, _ := filepath.Glob(filepath.Join(m.poolDir(), "*.json"))
	for _, p := range specs {
		os.Remove(p)
	}
	recs, err := m.store.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, r := range recs {
		if r.Pool == "" {
			continue
		}
		if err := m.Remove(ctx, r.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, r.Name)
	}
	return removed, errors.Join(errs...)
}
