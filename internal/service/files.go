package service

import (
	"context"
	"io"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/state"
)

// fileClient validates a sandbox path and returns the running sandbox's agent.
func (m *Manager) fileClient(ctx context.Context, name, path string) (*agentv1.Client, error) {
	_, c, err := m.fileTarget(ctx, name, path)
	return c, err
}

// fileTarget is fileClient that also returns the sandbox's record.
func (m *Manager) fileTarget(ctx context.Context, name, path string) (*state.Record, *agentv1.Client, error) {
	if err := sandbox.ValidatePath(path); err != nil {
		return nil, nil, err
	}
	return m.running(ctx, name, sandbox.OpFiles)
}

// ReadFile streams a file out of a sandbox.
func (m *Manager) ReadFile(ctx context.Context, name, path string) (io.ReadCloser, error) {
	c, err := m.fileClient(ctx, name, path)
	if err != nil {
		return nil, err
	}
	r, err := c.ReadFile(ctx, path)
	return r, agentError(err)
}

// WriteFile writes a file into a sandbox atomically, creating parent directories.
func (m *Manager) WriteFile(ctx context.Context, name, path string, r io.Reader, mode uint32) error {
	rec, c, err := m.fileTarget(ctx, name, path)
	if err != nil {
		return err
	}
	if mode == 0 {
		mode = 0o644
	}
	if err := c.WriteFile(ctx, path, r, mode, true); err != nil {
		return agentError(err)
	}
	m.audit(ctx, rec.Name, AuditEntry{Type: AuditFileWritten, Path: path})
	return nil
}

// RemoveFile removes a file (or a tree, with recursive) in a sandbox.
func (m *Manager) RemoveFile(ctx context.Context, name, path string, recursive bool) error {
	rec, c, err := m.fileTarget(ctx, name, path)
	if err != nil {
		return err
	}
	if err := c.Remove(ctx, path, recursive); err != nil {
		return agentError(err)
	}
	m.audit(ctx, rec.Name, AuditEntry{Type: AuditFileDeleted, Path: path})
	return nil
}

// Mkdir creates a directory in a sandbox.
func (m *Manager) Mkdir(ctx context.Context, name, path string, parents bool) error {
	c, err := m.fileClient(ctx, name, path)
	if err != nil {
		return err
	}
	return agentError(c.Mkdir(ctx, path, 0o755, parents))
}

// Stat describes a file in a sandbox.
func (m *Manager) Stat(ctx context.Context, name, path string) (agentv1.FileInfo, error) {
	c, err := m.fileClient(ctx, name, path)
	if err != nil {
		return agentv1.FileInfo{}, err
	}
	fi, err := c.Stat(ctx, path)
	return fi, agentError(err)
}

// ListDir lists a directory in a sandbox.
func (m *Manager) ListDir(ctx context.Context, name, path string) ([]agentv1.FileInfo, error) {
	c, err := m.fileClient(ctx, name, path)
	if err != nil {
		return nil, err
	}
	fi, err := c.List(ctx, path)
	return fi, agentError(err)
}
