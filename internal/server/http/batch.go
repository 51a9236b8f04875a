package httpapi

import (
	"net/http"
	"sync"
)

// Batch limits: how many commands one request may carry, and how many of
// them run at once.
const (
	maxBatch         = 64
	batchConcurrency = 4
)

type batchRequest struct {
	Commands []struct {
		Command []string `json:"command"`
	} `json:"commands"`
}

// batchResult is one command's result: output, and error when it failed.
type batchResult struct {
	Output   *string `json:"output"`
	Error    *string `json:"error"`
	ExitCode *int    `json:"exit_code,omitempty"`
}

// batchRun is POST /batch/run: commands in parallel, each in its own
// ephemeral sandbox, results in the order given.
func (s *Server) batchRun(w http.ResponseWriter, r *http.Request, _ params) {
	var req batchRequest
	if err := decode(w, r, &req); err != nil {
		fail(w, err, nil)
		return
	}
	if len(req.Commands) == 0 {
		fail(w, badRequest("commands is required"), nil)
		return
	}
	if len(req.Commands) > maxBatch {
		fail(w, badRequest("%d commands: at most %d per batch", len(req.Commands), maxBatch), nil)
		return
	}
	netErr := s.mgr.NetworkUnavailable()
	outs := make([]*outputBuffer, len(req.Commands))
	reqs := make([]runRequest, len(req.Commands))
	for i, c := range req.Commands {
		outs[i] = &outputBuffer{}
		reqs[i] = runRequest{Command: c.Command}
		if _, err := reqs[i].toService(netErr, nil, nil); err != nil {
			fail(w, badRequest("commands[%d]: command is required", i), nil)
			return
		}
	}
	results := make([]batchResult, len(req.Commands))
	sem := make(chan struct{}, batchConcurrency)
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			sreq, _ := reqs[i].toService(netErr, outs[i], outs[i])
			_, st, err := s.mgr.Run(r.Context(), sreq)
			if err != nil {
				msg := err.Error()
				results[i].Error = &msg
				return
			}
			out := outs[i].String()
			code := st.Code
			results[i].Output, results[i].ExitCode = &out, &code
			if code != 0 {
				msg := exitError(st).Error()
				results[i].Error = &msg
			}
		})
	}
	wg.Wait()
	ok(w, http.StatusOK, map[string]any{"results": results})
}
