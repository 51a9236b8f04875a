package v1

import (
	"fmt"
	"time"
)

// ProtocolVersion is the protocol's major version; both sides compare it on
// connect (GET /v1/version) and refuse to talk across a mismatch.
const ProtocolVersion = "1"

// Routes. {id} is a detached process id.
const (
	PathVersion   = "/v1/version"
	PathExec      = "/v1/exec"
	PathProcesses = "/v1/processes"           // POST start, GET list
	PathProcess   = "/v1/processes/{id}"      // GET status, DELETE forget an exited one
	PathLogs      = "/v1/processes/{id}/logs" // GET ?stream=stdout|stderr
	PathKill      = "/v1/processes/{id}/kill" // POST {"signal":N}
	PathFiles     = "/v1/files"               // ?path= GET read, PUT write, DELETE remove
	PathStat      = "/v1/files/stat"          // ?path= GET
	PathList      = "/v1/files/list"          // ?path= GET
	PathMkdir     = "/v1/files/mkdir"         // ?path=&parents=1&mode=0755 POST
	PathArchive   = "/v1/archive"             // ?path= GET a tar of the tree
	PathShutdown  = "/v1/shutdown"            // POST: stop every process, then exit
)

// Headers carrying file metadata next to raw bodies.
const (
	HeaderFileMode  = "X-File-Mode" // octal permission bits, e.g. "0644"
	HeaderTruncated = "X-Truncated" // bytes of a log dropped from its head
)

// VersionInfo answers GET /v1/version.
type VersionInfo struct {
	Protocol string `json:"protocol"`
	Agent    string `json:"agent"` // the agent build's version
	PID      int    `json:"pid"`   // the agent's pid in its own namespace (1 when init)
}

// ExecSpec describes a process to start, for both streamed (/v1/exec) and
// detached (/v1/processes) execution.
type ExecSpec struct {
	Args []string `json:"args"`
	// Env entries (KEY=VALUE) override the sandbox's default environment.
	Env []string `json:"env,omitempty"`
	// Dir is the working directory; empty means the sandbox default.
	Dir string `json:"dir,omitempty"`
	// User is a name, uid or uid:gid inside the sandbox; empty means root.
	User string `json:"user,omitempty"`
	// Stdin says the client will send stdin frames; otherwise stdin is /dev/null.
	Stdin bool `json:"stdin,omitempty"`
	// TTY runs the process on a new pseudo-terminal of Rows x Cols; its
	// output then arrives as stdout frames only.
	TTY  bool   `json:"tty,omitempty"`
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
	// TimeoutMS kills the process group after this many milliseconds (0: never).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// Validate reports a malformed spec.
func (s *ExecSpec) Validate() error {
	if len(s.Args) == 0 || s.Args[0] == "" {
		return &Error{Code: CodeInvalidArgument, Message: "no command given"}
	}
	if s.TimeoutMS < 0 {
		return &Error{Code: CodeInvalidArgument, Message: "negative timeout"}
	}
	return nil
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	// Code is the exit code; for a signal it is 128+signal, as shells report it.
	Code     int  `json:"code"`
	Signal   int  `json:"signal,omitempty"`
	TimedOut bool `json:"timed_out,omitempty"`
}

// Started is the first frame of a successful exec.
type Started struct {
	PID int `json:"pid"`
}

// Resize is a window-size change for a TTY process.
type Resize struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// Signal asks the agent to deliver a signal to the process group.
type Signal struct {
	Signal int `json:"signal"`
}

// Process states of a detached process.
const (
	StateRunning = "running"
	StateExited  = "exited"
)

// ProcessInfo describes a detached process.
type ProcessInfo struct {
	ID        string      `json:"id"`
	PID       int         `json:"pid"`
	Args      []string    `json:"args"`
	State     string      `json:"state"`
	Exit      *ExitStatus `json:"exit,omitempty"`
	StartedAt time.Time   `json:"started_at"`
	ExitedAt  *time.Time  `json:"exited_at,omitempty"`
}

// File types in FileInfo.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
	TypeOther   = "other"
)

// FileInfo describes one file in the sandbox.
type FileInfo struct {
	Name    string    `json:"name"`
	Path    string    `json:"path"`
	Type    string    `json:"type"`
	Size    int64     `json:"size"`
	Mode    uint32    `json:"mode"` // permission bits and setuid/setgid/sticky
	UID     int       `json:"uid"`
	GID     int       `json:"gid"`
	ModTime time.Time `json:"mod_time"`
	Target  string    `json:"target,omitempty"` // a symlink's target
}

// TrailerArchiveSkipped is the trailer of an archive that left entries out
// because the agent could not read them; its value is a JSON ArchiveSkipped.
const TrailerArchiveSkipped = "X-Archive-Skipped"

// ArchiveSkipped lists what an archive left out for lack of permission.
type ArchiveSkipped struct {
	Count int      `json:"count"`
	Paths []string `json:"paths,omitempty"` // the first few, absolute
}

// Error codes carried in Error.Code.
const (
	CodeInvalidArgument    = "invalid_argument"
	CodeNotFound           = "not_found"
	CodeAlreadyExists      = "already_exists"
	CodeFailedPrecondition = "failed_precondition"
	CodePermissionDenied   = "permission_denied"
	CodeCommandNotFound    = "command_not_found"      // exec: no such program (shells exit 127)
	CodeNotExecutable      = "command_not_executable" // exec: found, cannot run (shells exit 126)
	CodeUnavailable        = "unavailable"
	CodeInternal           = "internal"
)

// Error is the body of every non-2xx response and of error frames.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	return e.Message
}

// Errorf builds an *Error.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
