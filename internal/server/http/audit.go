package httpapi

import (
	"net/http"
	"strconv"
)

// sandboxLogs answers the SDK's getSandboxLogs: the sandbox's audit
// entries, oldest first, as agentkernel's array of objects. ?limit=N keeps
// the newest N.
func (s *Server) sandboxLogs(w http.ResponseWriter, r *http.Request, p params) {
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fail(w, badRequest("limit %q: want a whole number of entries", v), nil)
			return
		}
		limit = n
	}
	entries, err := s.mgr.AuditLog(r.Context(), p["name"], limit)
	if err != nil {
		fail(w, err, nil)
		return
	}
	ok(w, http.StatusOK, entries)
}
