package service

// This file is the manager's surface used by the frontends (CLI, HTTP, MCP).
// Implementation in progress; every method here is final in signature.

import (
	"io"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// Info describes one sandbox, as list and info show it.
type Info struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Backend   sandbox.Type   `json:"backend"`
	Status    sandbox.Status `json:"status"`
	Config    sandbox.Config `json:"config"`
	CreatedAt time.Time      `json:"created_at"`
	StartedAt *time.Time     `json:"started_at,omitempty"`
	ExpiresAt *time.Time     `json:"expires_at,omitempty"`
	// PID is the sandbox's init process on the host, while running.
	PID int `json:"pid,omitempty"`
	// Ports are the published ports as bound on the host's 127.0.0.1,
	// while running (Config.Ports are as asked, 0 for any free port).
	Ports []sandbox.PortMapping `json:"published_ports,omitempty"`
	// Pooled marks a warm-pool sandbox no run has claimed yet.
	Pooled bool `json:"pooled,omitempty"`
	// Crashed marks a sandbox that died without being stopped (killed,
	// out of memory, its VM gone): it reads as stopped until started or
	// cleaned by gc.
	Crashed bool `json:"crashed,omitempty"`
}

// CreateRequest asks for a new sandbox.
type CreateRequest struct {
	// Name may be empty: one is generated.
	Name string
	// Backend is a backend name or alias; empty means auto-detect.
	Backend string
	Config  sandbox.Config
}

// ExecRequest is one command to run in a sandbox. Spec fields left empty
// take the sandbox's defaults (env, workdir, user).
type ExecRequest struct {
	Spec   agentv1.ExecSpec
	Stdin  io.Reader // nil: /dev/null
	Stdout io.Writer
	Stderr io.Writer
}

// RunRequest is an ephemeral sandbox: create, start, exec, remove.
type RunRequest struct {
	Create CreateRequest
	Exec   ExecRequest
	// Keep leaves the sandbox running afterwards instead of removing it.
	Keep bool
}
