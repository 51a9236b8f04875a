package httpapi

import (
	"net/http"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/service"
)

// extendRequest is ExtendTtlOptions of the SDK.
type extendRequest struct {
	By string `json:"by"`
}

// extendResponse is ExtendTtlResponse of the SDK.
type extendResponse struct {
	ExpiresAt string `json:"expires_at"`
}

// extendTTL is POST /sandboxes/{name}/extend: {"by":"1h"} adds time to the
// sandbox's expiry (from now when it has none) and answers the new one.
func (s *Server) extendTTL(w http.ResponseWriter, r *http.Request, p params) {
	var req extendRequest
	if err := decode(w, r, &req); err != nil {
		fail(w, err, nil)
		return
	}
	if req.By == "" {
		fail(w, badRequest("by is required (a duration such as 30m, 1h or 2d)"), nil)
		return
	}
	by, err := service.ParseDuration(req.By)
	if err != nil {
		fail(w, err, nil)
		return
	}
	in, err := s.mgr.ExtendTTL(r.Context(), p["name"], by)
	if err != nil {
		fail(w, err, nil)
		return
	}
	ok(w, http.StatusOK, extendResponse{ExpiresAt: in.ExpiresAt.UTC().Format(time.RFC3339Nano)})
}
