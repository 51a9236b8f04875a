package v1

import (
	"context"
	"io"
	"net"
)

// Dialer opens a new byte stream to the agent.
type Dialer func(ctx context.Context) (net.Conn, error)

// Client talks to one agent. It multiplexes concurrent calls over HTTP/2
// connections it dials on demand; it is safe for concurrent use.
type Client struct {
	dial Dialer
	// implementation pending (see PROTOCOL.md)
}

// NewClient returns a client that reaches the agent through dial.
func NewClient(dial Dialer) *Client { return &Client{dial: dial} }

// Close releases the client's connections.
func (c *Client) Close() error { panic("TODO") }

// Version performs the version handshake; it fails if the protocol differs.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) { panic("TODO") }

// Exec runs a process to completion, streaming its output as it happens.
// stdin may be nil (the process gets /dev/null). Cancelling ctx kills the
// process. A process that could not start returns an *Error (for example
// CodeCommandNotFound).
func (c *Client) Exec(ctx context.Context, spec ExecSpec, stdin io.Reader, stdout, stderr io.Writer) (ExitStatus, error) {
	panic("TODO")
}

// Session is a running streamed exec driven by the caller (interactive use).
type Session struct{}

// StartExec starts a process and returns once the agent reports it started
// (or failed to start).
func (c *Client) StartExec(ctx context.Context, spec ExecSpec) (*Session, error) { panic("TODO") }

// PID is the process's pid inside the sandbox.
func (s *Session) PID() int { panic("TODO") }

// Stdin returns the writer feeding the process's stdin; Close sends EOF.
func (s *Session) Stdin() io.WriteCloser { panic("TODO") }

// Resize changes a TTY process's window size.
func (s *Session) Resize(rows, cols uint16) error { panic("TODO") }

// Signal delivers sig to the process group.
func (s *Session) Signal(sig int) error { panic("TODO") }

// Wait copies output to stdout/stderr until the process exits.
func (s *Session) Wait(stdout, stderr io.Writer) (ExitStatus, error) { panic("TODO") }

// StartProcess starts a detached process.
func (c *Client) StartProcess(ctx context.Context, spec ExecSpec) (ProcessInfo, error) { panic("TODO") }

// Processes lists detached processes.
func (c *Client) Processes(ctx context.Context) ([]ProcessInfo, error) { panic("TODO") }

// Process returns one detached process.
func (c *Client) Process(ctx context.Context, id string) (ProcessInfo, error) { panic("TODO") }

// ProcessLogs returns one output stream ("stdout" or "stderr") of a
// detached process as kept so far, and how many bytes were dropped from its head.
func (c *Client) ProcessLogs(ctx context.Context, id, stream string) (data []byte, truncated int64, err error) {
	panic("TODO")
}

// KillProcess signals a detached process's group.
func (c *Client) KillProcess(ctx context.Context, id string, sig int) (ProcessInfo, error) {
	panic("TODO")
}

// ReadFile streams a file's content; the caller closes it.
func (c *Client) ReadFile(ctx context.Context, path string) (io.ReadCloser, error) { panic("TODO") }

// WriteFile writes a file atomically (temp file + rename), creating parent
// directories when mkdirs is set.
func (c *Client) WriteFile(ctx context.Context, path string, r io.Reader, mode uint32, mkdirs bool) error {
	panic("TODO")
}

// Remove removes a file or, with recursive, a directory tree.
func (c *Client) Remove(ctx context.Context, path string, recursive bool) error { panic("TODO") }

// Mkdir creates a directory, and its parents with parents set.
func (c *Client) Mkdir(ctx context.Context, path string, mode uint32, parents bool) error {
	panic("TODO")
}

// Stat describes a file without following a final symlink.
func (c *Client) Stat(ctx context.Context, path string) (FileInfo, error) { panic("TODO") }

// List describes a directory's entries.
func (c *Client) List(ctx context.Context, path string) ([]FileInfo, error) { panic("TODO") }

// Shutdown asks the agent to stop every process and exit.
func (c *Client) Shutdown(ctx context.Context) error { panic("TODO") }
