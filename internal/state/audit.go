package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// auditFile is a sandbox's append-only audit log: one JSON object a line.
const auditFile = "audit.jsonl"

// MaxAuditSize bounds a sandbox's audit log. When an append takes the file
// past it, the oldest half is dropped (at a line boundary). A variable so
// tests can make it small.
var MaxAuditSize int64 = 1 << 20

// AppendAudit appends one line (a trailing newline is added when missing)
// to the named sandbox's audit log with a single O_APPEND write and no
// fsync: an audit entry a host crash loses describes a sandbox that no
// longer runs. Appenders share a flock on the file so that trimming it
// (exclusive, in place: the inode never changes) loses no entry. Appending
// to a removed sandbox fails with ErrNotFound and creates nothing.
func (s *Store) AppendAudit(name string, line []byte) error {
	if len(line) == 0 || line[len(line)-1] != '\n' {
		line = append(line, '\n')
	}
	f, err := os.OpenFile(filepath.Join(s.Dir(name), auditFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sandbox %q: %w", name, errdefs.ErrNotFound)
		}
		return fmt.Errorf("opening audit log: %w", err)
	}
	defer f.Close()
	fd := int(f.Fd())
	if err := flockRetry(fd, unix.LOCK_SH); err != nil {
		return fmt.Errorf("locking audit log: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("writing audit log: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size <= MaxAuditSize {
		return nil
	}
	// Trim: upgrade to an exclusive lock (flock converts, other appenders
	// finish their write first) and check again, another appender may
	// have trimmed meanwhile.
	if err := flockRetry(fd, unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking audit log: %w", err)
	}
	// Rewriting needs a descriptor without O_APPEND; the file is the same
	// (it is never replaced) and the lock on f covers it.
	rw, err := os.OpenFile(f.Name(), os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("trimming audit log: %w", err)
	}
	defer rw.Close()
	return trimAudit(rw)
}

// flockRetry takes a lock blocking, retrying when a signal interrupts the wait.
func flockRetry(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// trimAudit keeps the newest half of an over-size audit log, rewriting it
// in place. The caller holds the exclusive lock.
func trimAudit(f *os.File) error {
	fi, err := f.Stat()
	if err != nil || fi.Size() <= MaxAuditSize {
		return err
	}
	keep := MaxAuditSize / 2
	buf := make([]byte, keep)
	n, err := f.ReadAt(buf, fi.Size()-keep)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("trimming audit log: %w", err)
	}
	buf = buf[:n]
	// Start at a whole line: drop the partial one the cut went through.
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[i+1:]
	} else {
		buf = nil
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("trimming audit log: %w", err)
	}
	if err := f.Truncate(int64(len(buf))); err != nil {
		return fmt.Errorf("trimming audit log: %w", err)
	}
	return nil
}

// ReadAudit returns the named sandbox's audit log (nil when it has none).
// It fails with ErrNotFound when the sandbox does not exist.
func (s *Store) ReadAudit(name string) ([]byte, error) {
	f, err := os.OpenFile(filepath.Join(s.Dir(name), auditFile), os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(s.Dir(name)); serr != nil {
				return nil, fmt.Errorf("sandbox %q: %w", name, errdefs.ErrNotFound)
			}
			return nil, nil
		}
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	defer f.Close()
	// Shared: a trim in progress finishes first.
	if err := flockRetry(int(f.Fd()), unix.LOCK_SH); err != nil {
		return nil, fmt.Errorf("locking audit log: %w", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	return b, nil
}
