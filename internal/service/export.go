package service

import (
	"context"
	"fmt"
	"io"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// ExportResult says what an export left out.
type ExportResult struct {
	// Skipped counts the entries the sandbox's agent was not allowed to
	// read (a host file whose owner is not mapped into the sandbox, say);
	// they are not in the archive. SkippedPaths names the first few.
	Skipped      int
	SkippedPaths []string
}

// Export writes the running sandbox's whole root filesystem to w as an
// uncompressed tar (like docker export): the agent archives "/", so it is
// the tree the sandbox sees, mounts included, on every backend. /proc,
// /sys and /dev are empty directories in it. Unlike the file operations it
// includes the sandbox's own credential files (/etc/shadow, ...): it is a
// copy of the sandbox for its owner.
//
// An error means w got an incomplete archive; the caller discards it.
func (m *Manager) Export(ctx context.Context, name string, w io.Writer) (ExportResult, error) {
	_, c, err := m.running(ctx, name, sandbox.OpExport)
	if err != nil {
		return ExportResult{}, err
	}
	rc, err := c.Archive(ctx, "/")
	if err != nil {
		return ExportResult{}, agentError(err)
	}
	defer rc.Close()
	ew := &errWriter{w: w}
	if _, err := io.Copy(ew, rc); err != nil {
		if ew.err != nil {
			return ExportResult{}, fmt.Errorf("writing the archive of sandbox %s: %w", name, ew.err)
		}
		return ExportResult{}, agentError(err)
	}
	s := rc.Skipped()
	return ExportResult{Skipped: s.Count, SkippedPaths: s.Paths}, nil
}

// errWriter remembers a write error, to tell it from a read error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}
