package service

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"time"
)

// Audit event types. The names of agentkernel's audit log where it has one.
const (
	AuditCreated         = "sandbox_created"
	AuditStarted         = "sandbox_started"
	AuditStopped         = "sandbox_stopped"
	AuditCommand         = "command_executed"
	AuditSessionAttached = "session_attached"
	AuditDetachedStarted = "detached_started"
	AuditDetachedKilled  = "detached_killed"
	AuditFileWritten     = "file_written"
	AuditFileDeleted     = "file_deleted"
	AuditTTLExtended     = "ttl_extended"
)

// AuditEntry is one line of a sandbox's audit log (audit.jsonl in its
// state directory), shaped as agentkernel's: timestamp, pid, type, and the
// event's fields. Lifecycle events name the sandbox in "name", the others
// in "sandbox", as agentkernel writes them. File events carry the path,
// never the content.
type AuditEntry struct {
	Timestamp time.Time `json:"timestamp"`
	PID       int       `json:"pid"`
	Type      string    `json:"type"`
	Name      string    `json:"name,omitempty"`
	Sandbox   string    `json:"sandbox,omitempty"`
	// Via is the frontend that asked: cli, api or mcp.
	Via     string   `json:"via,omitempty"`
	Image   string   `json:"image,omitempty"`
	Backend string   `json:"backend,omitempty"`
	Command []string `json:"command,omitempty"`
	// ExitCode is set when a command ran to its end.
	ExitCode   *int       `json:"exit_code,omitempty"`
	DurationMS *float64   `json:"duration_ms,omitempty"`
	Error      string     `json:"error,omitempty"`
	Path       string     `json:"path,omitempty"`
	ProcessID  string     `json:"process_id,omitempty"`
	Signal     int        `json:"signal,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	// Network refusals: the protocol, the destination (address:port), the
	// name asked for (DNS, TLS SNI, HTTP Host) and the rule that refused.
	Protocol    string `json:"protocol,omitempty"`
	Destination string `json:"destination,omitempty"`
	Domain      string `json:"domain,omitempty"`
	Rule        string `json:"rule,omitempty"`
}

type viaKey struct{}

// WithVia tags ctx with the frontend making the calls ("cli", "api",
// "mcp"); the audit log records it.
func WithVia(ctx context.Context, via string) context.Context {
	return context.WithValue(ctx, viaKey{}, via)
}

func viaOf(ctx context.Context) string {
	v, _ := ctx.Value(viaKey{}).(string)
	return v
}

var selfPID = os.Getpid()

// audit appends e to sandbox's audit log. It never fails the operation it
// records: a failure is logged.
func (m *Manager) audit(ctx context.Context, sandbox string, e AuditEntry) {
	e.Timestamp = time.Now().UTC()
	e.PID = selfPID
	if e.Via == "" {
		e.Via = viaOf(ctx)
	}
	switch e.Type {
	case AuditCreated, AuditStarted, AuditStopped:
		e.Name = sandbox
	default:
		e.Sandbox = sandbox
	}
	line, err := json.Marshal(&e)
	if err == nil {
		err = m.store.AppendAudit(sandbox, line)
	}
	if err != nil {
		m.log.Warn("writing the audit log", "name", sandbox, "event", e.Type, "err", err)
	}
}

// auditCommand records a finished (or failed) command.
func (m *Manager) auditCommand(ctx context.Context, sandbox string, typ string, argv []string, start time.Time, code int, err error) {
	ms := float64(time.Since(start).Microseconds()) / 1000
	e := AuditEntry{Type: typ, Command: argv, DurationMS: &ms}
	if err != nil {
		e.Error = err.Error()
	} else {
		e.ExitCode = &code
	}
	m.audit(ctx, sandbox, e)
}

// AuditLog returns a sandbox's audit entries, oldest first: the newest
// limit of them when limit > 0, else all the log keeps (about the last
// 1 MiB). Lines that do not parse (a write cut short) are skipped.
func (m *Manager) AuditLog(ctx context.Context, name string, limit int) ([]AuditEntry, error) {
	rec, err := m.resolveName(name)
	if err != nil {
		return nil, err
	}
	b, err := m.store.ReadAudit(rec.Name)
	if err != nil {
		return nil, err
	}
	out := []AuditEntry{}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		var e AuditEntry
		if len(bytes.TrimSpace(line)) == 0 || json.Unmarshal(line, &e) != nil {
			continue
		}
		out = append(out, e)
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}
