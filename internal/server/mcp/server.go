package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentkernel-go/agentkernel/internal/service"
)

// Options configure the MCP server.
type Options struct {
	// Logger gets the server's own log (never stdout: over stdio that is
	// the protocol). Nil: no log.
	Logger *slog.Logger
	// Version is reported to clients; empty: the module's build version.
	Version string
	// AgentErr, if set, says why sandboxes cannot start (the agent binary
	// was not found, see setup.Manager); the tools that start one report it.
	AgentErr error
	// Cwd, Home and HostEnv are the host context a profile may use: the
	// permissive profile mounts Cwd and Home and passes a safe subset of
	// HostEnv, as `agentkernel run` does from the shell it runs in.
	Cwd     string
	Home    string
	HostEnv []string
}

// HTTPMaxBody bounds one MCP request over HTTP, as the HTTP API bounds its bodies.
const HTTPMaxBody = 16 << 20

// httpSessionIdle closes an HTTP session nobody used for this long; a
// client that comes back later initializes a new one.
const httpSessionIdle = time.Hour

// New returns an MCP server with every sandbox tool, calling mgr.
func New(mgr *service.Manager, opts Options) *mcp.Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	version := opts.Version
	if version == "" {
		version = buildVersion()
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "agentkernel", Title: "agentkernel sandboxes", Version: version},
		&mcp.ServerOptions{
			Logger: sdkLogger(log),
			Instructions: "Run code in isolated sandboxes. sandbox_run runs one command in a fresh sandbox that is " +
				"removed afterwards; sandbox_create, sandbox_exec and the file tools work with a sandbox that " +
				"persists until sandbox_remove.",
		})
	t := &tools{mgr: mgr, opts: opts, log: log}
	t.addSandboxTools(s)
	t.addExecTools(s)
	t.addFileTools(s)
	t.addDetachedTools(s)
	return s
}

// HTTPHandler serves New's server over MCP's streamable HTTP transport,
// one server for every session.
func HTTPHandler(mgr *service.Manager, opts Options) http.Handler {
	s := New(mgr, opts)
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{
		Logger:              sdkLogger(opts.Logger),
		MaxRequestBodyBytes: HTTPMaxBody,
		SessionTimeout:      httpSessionIdle,
	})
}

// sdkLogger is the log the SDK gets: only when debugging, since it reports
// routine events (a session ends, a signal stops the server) as errors.
func sdkLogger(log *slog.Logger) *slog.Logger {
	if log == nil || !log.Enabled(context.Background(), slog.LevelDebug) {
		return nil
	}
	return log
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// tools holds what every tool handler needs.
type tools struct {
	mgr  *service.Manager
	opts Options
	log  *slog.Logger
}

// failure is a tool result that is an error yet carries the tool's output:
// a command that ran and exited non-zero, or timed out.
type failure struct{ text string }

func (f *failure) Error() string { return f.text }

// handler is what each tool implements: the text the agent reads and the
// structured result.
type handler[In, Out any] func(ctx context.Context, in In) (text string, out Out, err error)

// add registers a tool whose input schema comes from In (descriptions from
// `jsonschema` tags, required unless omitempty), edited by schema if set.
// It is the MCP edge: every error becomes a result with isError (never a
// protocol error), and no text is much longer than MaxOutput.
func add[In, Out any](t *tools, s *mcp.Server, tool *mcp.Tool, schema func(*jsonschema.Schema), h handler[In, Out]) {
	if schema != nil {
		in, err := jsonschema.For[In](nil)
		if err != nil {
			panic(fmt.Sprintf("tool %s: %v", tool.Name, err))
		}
		schema(in)
		tool.InputSchema = in
	}
	mcp.AddTool(s, tool, func(ctx context.Context, _ *mcp.CallToolRequest, in In) (*mcp.CallToolResult, Out, error) {
		text, out, err := h(service.WithVia(ctx, "mcp"), in)
		var f *failure
		switch {
		case errors.As(err, &f):
			return &mcp.CallToolResult{IsError: true, Content: textContent(f.text)}, out, nil
		case err != nil:
			var zero Out
			t.log.Debug("tool failed", "tool", tool.Name, "err", err)
			return nil, zero, errors.New(errorText(err))
		}
		return &mcp.CallToolResult{Content: textContent(text)}, out, nil
	})
}

// asJSON is a structured result as text, for tools whose answer is data.
func asJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// textContent is a tool's text. Handlers cut what can grow (output, file
// content, logs) themselves and may add a short note after the cut; this
// is the safety net for anything that still came out too long.
func textContent(s string) []mcp.Content {
	if len(s) > MaxOutput+noteRoom {
		s = truncate(s)
	}
	return []mcp.Content{&mcp.TextContent{Text: s}}
}

// noteRoom is what a handler may add to text it cut: the marker and a note
// such as the exit code.
const noteRoom = 512

// errorText is how a failed tool call reads, as agentkernel writes it.
func errorText(err error) string {
	return truncate("Error: " + err.Error())
}

// prop returns a property of a schema For made, to add what tags cannot
// say (enums, defaults).
func prop(s *jsonschema.Schema, name string) *jsonschema.Schema {
	p, ok := s.Properties[name]
	if !ok {
		panic("no property " + name)
	}
	return p
}

func enum(s *jsonschema.Schema, name string, values ...string) {
	p := prop(s, name)
	for _, v := range values {
		p.Enum = append(p.Enum, v)
	}
}

func setDefault(s *jsonschema.Schema, name string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	prop(s, name).Default = raw
}

func readOnly() *mcp.ToolAnnotations { return &mcp.ToolAnnotations{ReadOnlyHint: true} }

func destructive() *mcp.ToolAnnotations {
	yes := true
	return &mcp.ToolAnnotations{DestructiveHint: &yes}
}
