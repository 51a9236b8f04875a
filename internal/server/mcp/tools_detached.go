package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// A detached command's ID is SANDBOX:ID, so that, as in agentkernel, the
// ID alone finds it (sandbox names never hold a colon).

type detachInput struct {
	Name    string   `json:"name" jsonschema:"Name of the sandbox"`
	Command []string `json:"command" jsonschema:"The command and arguments to run"`
	Env     []string `json:"env,omitempty" jsonschema:"Environment variables as KEY=VALUE pairs"`
	Workdir string   `json:"workdir,omitempty" jsonschema:"Working directory inside the sandbox"`
	Sudo    bool     `json:"sudo,omitempty" jsonschema:"Run the command as root"`
}

type idInput struct {
	ID   string `json:"id" jsonschema:"The detached command ID (as sandbox_exec_detach returned it)"`
	Name string `json:"name,omitempty" jsonschema:"Name of the sandbox; only needed for an ID without the SANDBOX: prefix"`
}

type logsInput struct {
	ID     string `json:"id" jsonschema:"The detached command ID (as sandbox_exec_detach returned it)"`
	Stream string `json:"stream,omitempty" jsonschema:"Which stream to read: stdout (default) or stderr"`
	Name   string `json:"name,omitempty" jsonschema:"Name of the sandbox; only needed for an ID without the SANDBOX: prefix"`
}

type killInput struct {
	ID     string `json:"id" jsonschema:"The detached command ID (as sandbox_exec_detach returned it)"`
	Signal string `json:"signal,omitempty" jsonschema:"Signal to send, by name or number (default: KILL)"`
	Name   string `json:"name,omitempty" jsonschema:"Name of the sandbox; only needed for an ID without the SANDBOX: prefix"`
}

type listCommandsInput struct {
	Name string `json:"name,omitempty" jsonschema:"Name of the sandbox (optional, lists all if omitted)"`
}

// detachedCommand is a detached command as agentkernel reports it.
type detachedCommand struct {
	ID        string     `json:"id"`
	Sandbox   string     `json:"sandbox"`
	Command   []string   `json:"command"`
	PID       int        `json:"pid"`
	Status    string     `json:"status" jsonschema:"running, completed (exit code 0) or failed"`
	ExitCode  *int       `json:"exit_code,omitempty"`
	StartedAt time.Time  `json:"started_at"`
	ExitedAt  *time.Time `json:"exited_at,omitempty"`
}

type commandsOutput struct {
	Commands []detachedCommand `json:"commands"`
}

type logsOutput struct {
	ID     string `json:"id"`
	Stream string `json:"stream"`
	Output string `json:"output" jsonschema:"The stream so far, cut to 16 KB (head and tail) when longer"`
	// Dropped counts bytes the sandbox no longer keeps (it keeps the end of long logs).
	Dropped int64 `json:"dropped_bytes,omitempty"`
}

func commandOf(sandboxName string, p agentv1.ProcessInfo) detachedCommand {
	c := detachedCommand{
		ID: sandboxName + ":" + p.ID, Sandbox: sandboxName, Command: p.Args, PID: p.PID,
		Status: "running", StartedAt: p.StartedAt, ExitedAt: p.ExitedAt,
	}
	if p.State != agentv1.StateRunning {
		c.Status = "failed"
		if p.Exit != nil {
			code := p.Exit.Code
			c.ExitCode = &code
			if code == 0 {
				c.Status = "completed"
			}
		}
	}
	return c
}

func (t *tools) addDetachedTools(s *mcp.Server) {
	add(t, s, &mcp.Tool{Name: "sandbox_exec_detach",
		Description: "Start a detached (background) command in a running sandbox. Returns a command ID " +
			"for sandbox_exec_status, sandbox_exec_logs and sandbox_exec_kill."},
		commandSchema, t.detach)
	add(t, s, &mcp.Tool{Name: "sandbox_exec_status", Annotations: readOnly(),
		Description: "Get the status of a detached command (running, completed, failed) and its exit code."},
		nil, t.status)
	add(t, s, &mcp.Tool{Name: "sandbox_exec_logs", Annotations: readOnly(),
		Description: "Get the stdout or stderr of a detached command so far."},
		func(s *jsonschema.Schema) {
			enum(s, "stream", "stdout", "stderr")
			setDefault(s, "stream", "stdout")
		}, t.logs)
	add(t, s, &mcp.Tool{Name: "sandbox_exec_kill", Annotations: destructive(),
		Description: "Kill a detached command (and the processes it started)."}, nil, t.kill)
	add(t, s, &mcp.Tool{Name: "sandbox_exec_list", Annotations: readOnly(),
		Description: "List the detached commands of a sandbox, or of every running sandbox."}, nil, t.listCommands)
}

func (t *tools) detach(ctx context.Context, in detachInput) (string, detachedCommand, error) {
	if err := checkEnv(in.Env); err != nil {
		return "", detachedCommand{}, err
	}
	spec := agentv1.ExecSpec{Args: in.Command, Env: in.Env, Dir: in.Workdir}
	if in.Sudo {
		spec.User = "root"
	}
	p, err := t.mgr.StartProcess(ctx, in.Name, spec)
	if err != nil {
		return "", detachedCommand{}, err
	}
	c := commandOf(in.Name, p)
	return asJSON(c), c, nil
}

// locate finds the sandbox and agent-side ID of a detached command ID.
func (t *tools) locate(ctx context.Context, name, id string) (sandboxName, procID string, err error) {
	if sb, pid, ok := strings.Cut(id, ":"); ok {
		if name != "" && name != sb {
			return "", "", fmt.Errorf("command ID %q belongs to sandbox %q, not %q: %w", id, sb, name, errdefs.ErrInvalidArgument)
		}
		name, id = sb, pid
	}
	if id == "" {
		return "", "", fmt.Errorf("empty command ID: %w", errdefs.ErrInvalidArgument)
	}
	if name != "" {
		return name, id, nil
	}
	infos, err := t.mgr.List(ctx)
	if err != nil {
		return "", "", err
	}
	for _, in := range infos {
		if in.Status != sandbox.StatusRunning || in.Pooled {
			continue
		}
		if _, err := t.mgr.Process(ctx, in.Name, id); err == nil {
			return in.Name, id, nil
		}
	}
	return "", "", fmt.Errorf("detached command %q: %w", id, errdefs.ErrNotFound)
}

func (t *tools) status(ctx context.Context, in idInput) (string, detachedCommand, error) {
	name, id, err := t.locate(ctx, in.Name, in.ID)
	if err != nil {
		return "", detachedCommand{}, err
	}
	p, err := t.mgr.Process(ctx, name, id)
	if err != nil {
		return "", detachedCommand{}, err
	}
	c := commandOf(name, p)
	return asJSON(c), c, nil
}

func (t *tools) logs(ctx context.Context, in logsInput) (string, logsOutput, error) {
	stream := in.Stream
	if stream == "" {
		stream = "stdout"
	}
	name, id, err := t.locate(ctx, in.Name, in.ID)
	if err != nil {
		return "", logsOutput{}, err
	}
	data, dropped, err := t.mgr.ProcessLogs(ctx, name, id, stream)
	if err != nil {
		return "", logsOutput{}, err
	}
	out := logsOutput{ID: name + ":" + id, Stream: stream, Output: truncate(string(data)), Dropped: dropped}
	text := out.Output
	if dropped > 0 {
		text = fmt.Sprintf("[%d earlier bytes no longer kept]\n%s", dropped, text)
	}
	return text, out, nil
}

func (t *tools) kill(ctx context.Context, in killInput) (string, detachedCommand, error) {
	sig, err := parseSignal(in.Signal)
	if err != nil {
		return "", detachedCommand{}, err
	}
	name, id, err := t.locate(ctx, in.Name, in.ID)
	if err != nil {
		return "", detachedCommand{}, err
	}
	p, err := t.mgr.KillProcess(ctx, name, id, sig)
	if err != nil {
		return "", detachedCommand{}, err
	}
	c := commandOf(name, p)
	return fmt.Sprintf("Command %s killed.", c.ID), c, nil
}

func (t *tools) listCommands(ctx context.Context, in listCommandsInput) (string, commandsOutput, error) {
	out := commandsOutput{Commands: []detachedCommand{}}
	var names []string
	if in.Name != "" {
		names = []string{in.Name}
	} else {
		infos, err := t.mgr.List(ctx)
		if err != nil {
			return "", out, err
		}
		for _, s := range infos {
			if s.Status == sandbox.StatusRunning && !s.Pooled {
				names = append(names, s.Name)
			}
		}
	}
	for _, name := range names {
		ps, err := t.mgr.Processes(ctx, name)
		switch {
		case err != nil && in.Name == "" && errors.Is(err, errdefs.ErrFailedPrecondition):
			continue // stopped since it was listed
		case err != nil:
			return "", commandsOutput{}, err
		}
		for _, p := range ps {
			out.Commands = append(out.Commands, commandOf(name, p))
		}
	}
	return truncate(asJSON(out.Commands)), out, nil
}

var signals = map[string]int{
	"HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "USR1": 10, "USR2": 12, "TERM": 15, "CONT": 18, "STOP": 19,
}

// parseSignal reads a signal name (KILL, SIGTERM) or number; "" is KILL.
func parseSignal(s string) (int, error) {
	if s == "" {
		return 9, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n <= 64 {
		return n, nil
	}
	if n, ok := signals[strings.TrimPrefix(strings.ToUpper(s), "SIG")]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("signal %q: want a name such as TERM or KILL, or a number: %w", s, errdefs.ErrInvalidArgument)
}
