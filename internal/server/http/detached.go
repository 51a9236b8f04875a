package httpapi

import (
	"net/http"
	"syscall"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
)

// detachedCommand is DetachedCommand of the SDK.
type detachedCommand struct {
	ID        string   `json:"id"`
	Sandbox   string   `json:"sandbox"`
	Command   []string `json:"command"`
	PID       int      `json:"pid"`
	Status    string   `json:"status"` // running, completed, failed
	ExitCode  *int     `json:"exit_code"`
	StartedAt string   `json:"started_at"`
}

func toDetached(sandbox string, p agentv1.ProcessInfo) detachedCommand {
	d := detachedCommand{
		ID: p.ID, Sandbox: sandbox, Command: p.Args, PID: p.PID, Status: "running",
		StartedAt: p.StartedAt.UTC().Format(time.RFC3339Nano),
	}
	if p.State != agentv1.StateRunning {
		d.Status = "failed"
		if p.Exit != nil {
			code := p.Exit.Code
			d.ExitCode = &code
			if code == 0 {
				d.Status = "completed"
			}
		}
	}
	return d
}

// execDetached is POST /sandboxes/{name}/exec/detach.
func (s *Server) execDetached(w http.ResponseWriter, r *http.Request, p params) {
	var req execRequest
	if err := decode(w, r, &req); err != nil {
		fail(w, err, nil)
		return
	}
	spec, err := req.spec()
	if err != nil {
		fail(w, err, nil)
		return
	}
	pi, err := s.mgr.StartProcess(r.Context(), p["name"], spec)
	if err != nil {
		fail(w, err, nil)
		return
	}
	ok(w, http.StatusCreated, toDetached(p["name"], pi))
}

func (s *Server) detachedList(w http.ResponseWriter, r *http.Request, p params) {
	ps, err := s.mgr.Processes(r.Context(), p["name"])
	if err != nil {
		fail(w, err, nil)
		return
	}
	out := make([]detachedCommand, 0, len(ps))
	for _, pi := range ps {
		out = append(out, toDetached(p["name"], pi))
	}
	ok(w, http.StatusOK, out)
}

func (s *Server) detachedStatus(w http.ResponseWriter, r *http.Request, p params) {
	pi, err := s.mgr.Process(r.Context(), p["name"], p["id"])
	if err != nil {
		fail(w, err, nil)
		return
	}
	ok(w, http.StatusOK, toDetached(p["name"], pi))
}

// detachedKill is DELETE /sandboxes/{name}/exec/detached/{id}: SIGKILL.
func (s *Server) detachedKill(w http.ResponseWriter, r *http.Request, p params) {
	if _, err := s.mgr.KillProcess(r.Context(), p["name"], p["id"], int(syscall.SIGKILL)); err != nil {
		fail(w, err, nil)
		return
	}
	ok(w, http.StatusOK, "killed")
}

// detachedLogs is GET …/exec/detached/{id}/logs[?stream=stdout|stderr]:
// both streams unless one is asked for.
func (s *Server) detachedLogs(w http.ResponseWriter, r *http.Request, p params) {
	streams := []string{"stdout", "stderr"}
	if q := r.URL.Query().Get("stream"); q != "" {
		streams = []string{q}
	}
	out := map[string]string{}
	for _, st := range streams {
		b, _, err := s.mgr.ProcessLogs(r.Context(), p["name"], p["id"], st)
		if err != nil {
			fail(w, err, nil)
			return
		}
		out[st] = string(b)
	}
	ok(w, http.StatusOK, out)
}
