package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/flock"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

const (
	stateFile = "state.json"
	lockFile  = "lock"
	// spareFile holds the previous state, reused by the next write.
	spareFile = ".state.json.spare"
	// tmpPrefix marks directories being created or deleted; List skips them
	// and GC removes stale ones.
	tmpPrefix = ".tmp-"
	// recordVersion is bumped when Record changes incompatibly.
	recordVersion = 1
)

// Record is what the store keeps about one sandbox.
type Record struct {
	Version   int              `json:"version"`
	ID        string           `json:"id"`
	Name      string           `json:"name"`
	Backend   sandbox.Type     `json:"backend"`
	Status    sandbox.Status   `json:"status"`
	Config    sandbox.Config   `json:"config"`
	RootFS    sandbox.RootFS   `json:"rootfs"`
	CreatedAt time.Time        `json:"created_at"`
	StartedAt *time.Time       `json:"started_at,omitempty"`
	ExpiresAt *time.Time       `json:"expires_at,omitempty"`
	Runtime   *sandbox.Runtime `json:"runtime,omitempty"`
	// Pool is the warm-pool key of a started sandbox nobody has claimed
	// yet; empty for every other sandbox.
	Pool string `json:"pool,omitempty"`
	// Owner is the process an ephemeral sandbox (`run`) exists for; once
	// that process is gone the sandbox is garbage, whatever killed it.
	Owner *Owner `json:"owner,omitempty"`
}

// Owner identifies a process across pid reuse.
type Owner struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// Store keeps sandbox records under a directory.
type Store struct {
	dir string
}

// Open returns the store under root, creating <root>/sandboxes (mode 0700).
func Open(root string) (*Store, error) {
	dir := filepath.Join(root, "sandboxes")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("opening state store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the private directory of the named sandbox.
func (s *Store) Dir(name string) string {
	return filepath.Join(s.dir, name)
}

// Create stores a new record. It fails with ErrAlreadyExists if the name is
// taken; a crash midway leaves only a temp directory that GC removes.
func (s *Store) Create(rec *Record) error {
	rec.Version = recordVersion
	tmp, err := os.MkdirTemp(s.dir, tmpPrefix)
	if err != nil {
		return fmt.Errorf("creating sandbox directory: %w", err)
	}
	if err := writeRecord(tmp, rec, true); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	// RENAME_NOREPLACE makes claiming the name atomic between processes.
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, s.Dir(rec.Name), unix.RENAME_NOREPLACE); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("sandbox %q: %w", rec.Name, errdefs.ErrAlreadyExists)
		}
		return fmt.Errorf("creating sandbox %q: %w", rec.Name, err)
	}
	return nil
}

// Load reads the named record.
func (s *Store) Load(name string) (*Record, error) {
	return readRecord(s.Dir(name), name)
}

func readRecord(dir, name string) (*Record, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("sandbox %q: %w", name, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("reading sandbox %q: %w", name, err)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("sandbox %q: corrupt state: %v: %w", name, err, errdefs.ErrInternal)
	}
	if rec.Version != recordVersion {
		return nil, fmt.Errorf("sandbox %q: state version %d, this agentkernel reads %d: %w",
			name, rec.Version, recordVersion, errdefs.ErrFailedPrecondition)
	}
	return &rec, nil
}

// Save replaces a record atomically and durably. The caller holds the
// sandbox's lock.
func (s *Store) Save(rec *Record) error {
	return s.save(rec, true)
}

// SaveVolatile is Save without the fsync, for changes a crash may lose
// without harm: after a host crash no sandbox runs any more, so the warm
// pool's claims and a finished run's expiry mean nothing then.
func (s *Store) SaveVolatile(rec *Record) error {
	return s.save(rec, false)
}

func (s *Store) save(rec *Record, durable bool) error {
	if _, err := os.Stat(s.Dir(rec.Name)); err != nil {
		return fmt.Errorf("sandbox %q: %w", rec.Name, errdefs.ErrNotFound)
	}
	return writeRecord(s.Dir(rec.Name), rec, durable)
}

// writeRecord replaces dir's state.json atomically. The new content goes
// into a spare file that is then exchanged with state.json
// (RENAME_EXCHANGE), so the old content becomes the next spare: no inode
// and no block is freed per write. That matters on filesystems mounted
// with online discard (common on cloud VMs), where freeing blocks makes
// each replace-by-rename cost hundreds of microseconds — on the warm
// pool's claim, the hot path of `run`. Writers hold the sandbox's lock, so
// the spare has one writer at a time.
func writeRecord(dir string, rec *Record, durable bool) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding sandbox state: %w", err)
	}
	spare := filepath.Join(dir, spareFile)
	if err := writeSpare(spare, b, durable); err != nil {
		return fmt.Errorf("writing sandbox state: %w", err)
	}
	path := filepath.Join(dir, stateFile)
	err = unix.Renameat2(unix.AT_FDCWD, spare, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
		// The first write, or a filesystem without exchange.
		err = os.Rename(spare, path)
	}
	if err != nil {
		return fmt.Errorf("writing sandbox state: %w", err)
	}
	return nil
}

// writeSpare overwrites the spare file with b in place (no O_TRUNC, which
// would free its block before the write reuses it).
func writeSpare(path string, b []byte, durable bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, 0)
	if err == nil {
		err = f.Truncate(int64(len(b)))
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Delete removes a sandbox's directory. It first renames it aside so the
// name is free at once and a crash midway leaves only a temp directory.
func (s *Store) Delete(name string) error {
	tmp := filepath.Join(s.dir, fmt.Sprintf("%sdel-%s-%d", tmpPrefix, name, time.Now().UnixNano()))
	if err := os.Rename(s.Dir(name), tmp); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("removing sandbox %q: %w", name, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("removing sandbox %q: %w", name, err)
	}
	return nil
}

// List returns every record, sorted by name. Unreadable records are skipped.
func (s *Store) List() ([]*Record, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("listing sandboxes: %w", err)
	}
	var recs []*Record
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		rec, err := s.Load(e.Name())
		if err != nil {
			continue
		}
		recs = append(recs, rec)
	}
	slices.SortFunc(recs, func(a, b *Record) int { return strings.Compare(a.Name, b.Name) })
	return recs, nil
}

// Names lists the sandboxes' names (unsorted), reading no record.
func (s *Store) Names() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("listing sandboxes: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), tmpPrefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// RemoveStale deletes temp directories older than age left by crashed
// processes, returning how many it removed.
func (s *Store) RemoveStale(age time.Duration) int {
	entries, _ := os.ReadDir(s.dir)
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			if os.RemoveAll(filepath.Join(s.dir, e.Name())) == nil {
				n++
			}
		}
	}
	return n
}

// TryLock takes the named sandbox's mutation lock only if nobody holds it.
func (s *Store) TryLock(name string) (func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Lock tries once before it looks at ctx
	return s.Lock(ctx, name)
}

// Lock takes the named sandbox's mutation lock, waiting until ctx ends. The
// returned function releases it.
func (s *Store) Lock(ctx context.Context, name string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.Dir(name), lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("sandbox %q: %w", name, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("locking sandbox %q: %w", name, err)
	}
	if err := flock.Wait(ctx, int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting for sandbox %q lock: %w", name, errdefs.ErrDeadlineExceeded)
		}
		return nil, fmt.Errorf("locking sandbox %q: %w", name, err)
	}
	// The sandbox may have been removed (and even re-created) while we
	// waited: the lock is only good if its file is still the one at the path.
	held, err1 := f.Stat()
	current, err2 := os.Stat(filepath.Join(s.Dir(name), lockFile))
	if err1 != nil || err2 != nil || !os.SameFile(held, current) {
		f.Close()
		return nil, fmt.Errorf("sandbox %q: %w", name, errdefs.ErrNotFound)
	}
	return func() { f.Close() }, nil
}
