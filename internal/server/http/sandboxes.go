package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// sandboxInfo is SandboxInfo of the SDK. Status is "running" or "stopped"
// as the SDK knows them; state is agentkernel's own (created, running,
// stopped).
type sandboxInfo struct {
	Name      string     `json:"name"`
	UUID      string     `json:"uuid"`
	Status    string     `json:"status"`
	State     string     `json:"state"`
	Backend   string     `json:"backend"`
	Image     string     `json:"image,omitempty"`
	VCPUs     int        `json:"vcpus,omitempty"`
	MemoryMB  int        `json:"memory_mb,omitempty"`
	CreatedAt string     `json:"created_at,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func toSandboxInfo(in *service.Info) sandboxInfo {
	status := "stopped"
	if in.Status == sandbox.StatusRunning {
		status = "running"
	}
	return sandboxInfo{
		Name: in.Name, UUID: in.ID, Status: status, State: string(in.Status), Backend: string(in.Backend),
		Image: in.Config.Image, VCPUs: in.Config.VCPUs, MemoryMB: in.Config.MemoryMB,
		CreatedAt: in.CreatedAt.UTC().Format(time.RFC3339), ExpiresAt: in.ExpiresAt,
	}
}

func (s *Server) listSandboxes(w http.ResponseWriter, r *http.Request, _ params) {
	list, err := s.mgr.List(r.Context())
	if err != nil {
		fail(w, err, nil)
		return
	}
	out := make([]sandboxInfo, 0, len(list))
	for _, in := range list {
		if !in.Pooled { // the warm pool is the manager's business
			out = append(out, toSandboxInfo(in))
		}
	}
	ok(w, http.StatusOK, out)
}

// createRequest is CreateSandboxOptions of the SDK, with the name.
type createRequest struct {
	Name        string   `json:"name"`
	Image       string   `json:"image"`
	VCPUs       *int     `json:"vcpus"`
	MemoryMB    *int     `json:"memory_mb"`
	Profile     string   `json:"profile"`
	SourceURL   string   `json:"source_url"`
	SourceRef   string   `json:"source_ref"`
	Volumes     []string `json:"volumes"`
	Secrets     []string `json:"secrets"`
	SecretFiles []string `json:"secret_files"`
	networkFields
}

// createSandbox is POST /sandboxes: create and start, as agentkernel does.
func (s *Server) createSandbox(w http.ResponseWriter, r *http.Request, _ params) {
	var req createRequest
	if err := decode(w, r, &req); err != nil {
		fail(w, err, nil)
		return
	}
	for field, set := range map[string]bool{
		"source_url": req.SourceURL != "" || req.SourceRef != "", "volumes": len(req.Volumes) > 0,
		"secrets": len(req.Secrets) > 0, "secret_files": len(req.SecretFiles) > 0,
	} {
		if set {
			fail(w, fmt.Errorf("sandbox option %s: %w", field, errdefs.ErrNotImplemented), nil)
			return
		}
	}
	o, err := req.options(sandbox.Options{Profile: req.Profile, Image: req.Image, VCPUs: req.VCPUs, MemoryMB: req.MemoryMB})
	if err != nil {
		fail(w, err, nil)
		return
	}
	cfg, err := resolveConfig(s.mgr.NetworkUnavailable(), o)
	if err != nil {
		fail(w, err, nil)
		return
	}
	in, err := s.mgr.Create(r.Context(), service.CreateRequest{Name: req.Name, Config: cfg})
	if err != nil {
		fail(w, err, nil)
		return
	}
	started, err := s.mgr.Start(r.Context(), in.Name)
	if err != nil {
		// A sandbox the client was told nothing about must not stay.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Minute)
		defer cancel()
		fail(w, errors.Join(err, s.mgr.Remove(cctx, in.Name)), nil)
		return
	}
	ok(w, http.StatusCreated, toSandboxInfo(started))
}

func (s *Server) getSandbox(w http.ResponseWriter, r *http.Request, p params) {
	in, err := s.mgr.Get(r.Context(), p["name"])
	if err != nil {
		fail(w, err, nil)
		return
	}
	ok(w, http.StatusOK, toSandboxInfo(in))
}

func (s *Server) getSandboxByUUID(w http.ResponseWriter, r *http.Request, p params) {
	id := p["uuid"]
	if uuid.Validate(id) != nil {
		fail(w, badRequest("%q is not a UUID", id), nil)
		return
	}
	in, err := s.mgr.Get(r.Context(), id)
	if err == nil && in.ID != id {
		err = fmt.Errorf("sandbox with uuid %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		fail(w, err, nil)
		return
	}
	ok(w, http.StatusOK, toSandboxInfo(in))
}

func (s *Server) removeSandbox(w http.ResponseWriter, r *http.Request, p params) {
	if err := s.mgr.Remove(r.Context(), p["name"]); err != nil {
		fail(w, err, nil)
		return
	}
	ok(w, http.StatusOK, "Sandbox removed")
}

func (s *Server) startSandbox(w http.ResponseWriter, r *http.Request, p params) {
	in, err := s.mgr.Start(r.Context(), p["name"])
	if err != nil {
		fail(w, err, nil)
		return
	}
	ok(w, http.StatusOK, toSandboxInfo(in))
}

func (s *Server) stopSandbox(w http.ResponseWriter, r *http.Request, p params) {
	in, err := s.mgr.Stop(r.Context(), p["name"])
	if err != nil {
		fail(w, err, nil)
		return
	}
	ok(w, http.StatusOK, toSandboxInfo(in))
}

// execRequest is the body of exec and exec/detach (ExecOptions of the SDK).
type execRequest struct {
	Command []string `json:"command"`
	Env     []string `json:"env"`
	Workdir string   `json:"workdir"`
	Sudo    bool     `json:"sudo"`
}

func (req *execRequest) spec() (agentv1.ExecSpec, error) {
	if len(req.Command) == 0 || req.Command[0] == "" {
		return agentv1.ExecSpec{}, badRequest("command is required")
	}
	spec := agentv1.ExecSpec{Args: req.Command, Env: req.Env, Dir: req.Workdir}
	if req.Sudo {
		spec.User = "root"
	}
	return spec, nil
}

// exec is POST /sandboxes/{name}/exec: 200 with the output, 409 with exit
// code and output when the command fails.
func (s *Server) exec(w http.ResponseWriter, r *http.Request, p params) {
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
	var out outputBuffer
	st, err := s.mgr.Exec(r.Context(), p["name"], service.ExecRequest{Spec: spec, Stdout: &out, Stderr: &out})
	if err != nil {
		fail(w, err, nil)
		return
	}
	res := runOutput{Output: out.String(), ExitCode: st.Code}
	if st.Code != 0 {
		fail(w, exitError(st), res)
		return
	}
	ok(w, http.StatusOK, res)
}
