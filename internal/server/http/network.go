package httpapi

import (
	"net/http"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
)

// getNetwork is GET /sandboxes/{name}/network: the sandbox's egress rules.
func (s *Server) getNetwork(w http.ResponseWriter, r *http.Request, p params) {
	in, err := s.mgr.Get(r.Context(), p["name"])
	if err != nil {
		fail(w, err, nil)
		return
	}
	ok(w, http.StatusOK, in.Config.Egress)
}

// setNetwork is PUT (replace) and POST (add) /sandboxes/{name}/network:
// new egress rules, followed at once by a running sandbox's new
// connections. It answers the rules now in force.
func (s *Server) setNetwork(w http.ResponseWriter, r *http.Request, p params) {
	var rules netpolicy.Rules
	if err := decode(w, r, &rules); err != nil {
		fail(w, err, nil)
		return
	}
	in, err := s.mgr.SetEgress(r.Context(), p["name"], rules, r.Method == http.MethodPost)
	if err != nil {
		fail(w, err, nil)
		return
	}
	ok(w, http.StatusOK, in.Config.Egress)
}
