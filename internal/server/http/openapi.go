package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of every route in routes.go, checked
// in next to them. TestOpenAPIMatchesRouter keeps the two in step: a route
// added without its documentation fails it.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI is GET /openapi.json.
func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request, _ params) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	w.Write(openAPI)
}
