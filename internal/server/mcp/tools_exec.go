package mcpserver

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// defaultRunTimeoutMS is sandbox_run's default timeout, as in agentkernel.
const defaultRunTimeoutMS = 30_000

type runInput struct {
	Command           []string          `json:"command" jsonschema:"The command and arguments to run (e.g. [\"python3\", \"script.py\"] or [\"sh\", \"-c\", \"make && make test\"])"`
	Image             string            `json:"image,omitempty" jsonschema:"OCI image to use, pulled if needed (default: host, a read-only view of the host's userland that needs no download)"`
	Fast              *bool             `json:"fast,omitempty" jsonschema:"Accepted for compatibility: a warm pool of sandboxes is used whenever the options allow"`
	Cwd               string            `json:"cwd,omitempty" jsonschema:"Working directory inside the sandbox"`
	Env               map[string]string `json:"env,omitempty" jsonschema:"Environment variables to set"`
	TimeoutMS         int64             `json:"timeout_ms,omitempty" jsonschema:"Kill the command after this many milliseconds (default: 30000; 0: no limit)"`
	Profile           string            `json:"profile,omitempty" jsonschema:"Security profile (default: moderate)"`
	Network           *bool             `json:"network,omitempty" jsonschema:"Network access under the sandbox's egress policy (default: what the profile says)"`
	CompatibilityMode string            `json:"compatibility_mode,omitempty" jsonschema:"Agent compatibility mode: claude, codex or gemini allow only that agent's API hosts, package registries and GitHub; native (the default) adds no egress rules"`
	Ports             []string          `json:"ports,omitempty" jsonschema:"Port mappings (e.g. [\"8080:80\"]); not yet supported"`
}

type execInput struct {
	Name      string   `json:"name" jsonschema:"Name of the sandbox"`
	Command   []string `json:"command" jsonschema:"The command and arguments to run"`
	Env       []string `json:"env,omitempty" jsonschema:"Environment variables as KEY=VALUE pairs"`
	Workdir   string   `json:"workdir,omitempty" jsonschema:"Working directory inside the sandbox"`
	Sudo      bool     `json:"sudo,omitempty" jsonschema:"Run the command as root"`
	TimeoutMS int64    `json:"timeout_ms,omitempty" jsonschema:"Kill the command after this many milliseconds (default: no limit)"`
}

// execOutput is how a command ended and what it wrote.
type execOutput struct {
	ExitCode int    `json:"exit_code" jsonschema:"The exit code (128+signal when a signal ended the command)"`
	Output   string `json:"output" jsonschema:"stdout and stderr as they interleaved, cut to 16 KB (head and tail) when longer"`
	TimedOut bool   `json:"timed_out,omitempty" jsonschema:"The command ran out of time and was killed"`
}

// commandSchema asks for a non-empty command (For would also allow null).
func commandSchema(s *jsonschema.Schema) {
	p := prop(s, "command")
	p.Type, p.Types, p.MinItems = "array", nil, jsonschema.Ptr(1)
}

func (t *tools) addExecTools(s *mcp.Server) {
	add(t, s, &mcp.Tool{Name: "sandbox_run",
		Description: "Run a command in a fresh isolated sandbox that is removed afterwards; it cannot " +
			"affect the host. Returns the output; a non-zero exit is an error result that reports the exit code."},
		func(s *jsonschema.Schema) {
			commandSchema(s)
			profileEnum(s)
			enum(s, "compatibility_mode", "native", "claude", "codex", "gemini")
			setDefault(s, "timeout_ms", defaultRunTimeoutMS)
		}, t.run)
	add(t, s, &mcp.Tool{Name: "sandbox_exec",
		Description: "Execute a command in an existing running sandbox. Returns the output; a non-zero " +
			"exit is an error result that reports the exit code."},
		commandSchema, t.exec)
}

func (t *tools) run(ctx context.Context, in runInput) (string, execOutput, error) {
	var none execOutput
	o := sandbox.Options{Profile: in.Profile, Image: in.Image, Network: in.Network}
	if in.CompatibilityMode != "native" {
		o.NetworkPreset = in.CompatibilityMode // agentkernel's modes' egress rules
	}
	env, err := envList(in.Env)
	if err != nil {
		return "", none, err
	}
	cfg, _, err := t.config(o, in.Ports)
	if err != nil {
		return "", none, err
	}
	if err := t.prepare(ctx, cfg.Image); err != nil {
		return "", none, err
	}
	spec := agentv1.ExecSpec{Args: in.Command, Env: env, Dir: in.Cwd, TimeoutMS: in.TimeoutMS}
	out := &capture{}
	_, st, err := t.mgr.Run(ctx, service.RunRequest{
		Create: service.CreateRequest{Config: cfg},
		Exec:   service.ExecRequest{Spec: spec, Stdout: out, Stderr: out},
	})
	if err != nil {
		return "", none, err
	}
	return exitResult(st, out, spec.TimeoutMS)
}

func (t *tools) exec(ctx context.Context, in execInput) (string, execOutput, error) {
	if err := checkEnv(in.Env); err != nil {
		return "", execOutput{}, err
	}
	spec := agentv1.ExecSpec{Args: in.Command, Env: in.Env, Dir: in.Workdir, TimeoutMS: in.TimeoutMS}
	if in.Sudo {
		spec.User = "root"
	}
	out := &capture{}
	st, err := t.mgr.Exec(ctx, in.Name, service.ExecRequest{Spec: spec, Stdout: out, Stderr: out})
	if err != nil {
		return "", execOutput{}, err
	}
	return exitResult(st, out, spec.TimeoutMS)
}

// exitResult reports a command that ran: its output, and for a non-zero
// exit or a timeout an error result saying so after the output.
func exitResult(st agentv1.ExitStatus, out *capture, timeoutMS int64) (string, execOutput, error) {
	o := execOutput{ExitCode: st.Code, Output: out.String(), TimedOut: st.TimedOut}
	switch {
	case st.TimedOut:
		return "", o, &failure{text: withNote(o.Output, fmt.Sprintf("[timed out after %d ms and killed: exit code %d]", timeoutMS, st.Code))}
	case st.Code != 0:
		return "", o, &failure{text: withNote(o.Output, fmt.Sprintf("[exit code %d]", st.Code))}
	case o.Output == "":
		return "(no output)", o, nil
	}
	return o.Output, o, nil
}

func withNote(output, note string) string {
	if output != "" && !strings.HasSuffix(output, "\n") {
		output += "\n"
	}
	return output + note
}

// envList turns an environment map into sorted KEY=VALUE entries.
func envList(env map[string]string) ([]string, error) {
	list := make([]string, 0, len(env))
	for k, v := range env {
		if k == "" || strings.Contains(k, "=") {
			return nil, fmt.Errorf("environment variable name %q: %w", k, errdefs.ErrInvalidArgument)
		}
		list = append(list, k+"="+v)
	}
	slices.Sort(list)
	return list, nil
}

// checkEnv checks KEY=VALUE entries.
func checkEnv(env []string) error {
	for _, e := range env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("environment entry %q is not KEY=VALUE: %w", e, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}
