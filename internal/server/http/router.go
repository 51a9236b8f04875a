package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// The router matches escaped path segments itself instead of using
// http.ServeMux: the SDK puts file paths into the URL unescaped
// (`/sandboxes/x/files//tmp/a`), which ServeMux would answer with a
// redirect to a cleaned path.

// params are a route's path parameters, unescaped.
type params map[string]string

type handlerFunc func(w http.ResponseWriter, r *http.Request, p params)

type route struct {
	method  string // "" matches every method
	pattern string // "/sandboxes/{name}/files/{path...}"
	segs    []string
	h       handlerFunc
}

type router struct {
	routes []route
}

func (rt *router) handle(method, pattern string, h handlerFunc) {
	rt.routes = append(rt.routes, route{
		method: method, pattern: pattern,
		segs: strings.Split(strings.TrimPrefix(pattern, "/"), "/"), h: h,
	})
}

// match returns the route for r, or the status to answer when none fits.
func (rt *router) match(r *http.Request) (*route, params, int) {
	raw := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	pathMatched := false
	for i := range rt.routes {
		rte := &rt.routes[i]
		p, ok := matchSegs(rte.segs, raw)
		if !ok {
			continue
		}
		pathMatched = true
		if rte.method == "" || rte.method == r.Method || (rte.method == http.MethodGet && r.Method == http.MethodHead) {
			return rte, p, 0
		}
	}
	if pathMatched {
		return nil, nil, http.StatusMethodNotAllowed
	}
	return nil, nil, http.StatusNotFound
}

func matchSegs(pattern, raw []string) (params, bool) {
	p := params{}
	for i, seg := range pattern {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "...}") {
			if i >= len(raw) {
				return nil, false
			}
			rest, err := url.PathUnescape(strings.Join(raw[i:], "/"))
			if err != nil {
				return nil, false
			}
			p[seg[1:len(seg)-4]] = rest
			return p, true
		}
		if i >= len(raw) {
			return nil, false
		}
		if strings.HasPrefix(seg, "{") {
			v, err := url.PathUnescape(raw[i])
			if err != nil || v == "" {
				return nil, false
			}
			p[seg[1:len(seg)-1]] = v
			continue
		}
		if raw[i] != seg {
			return nil, false
		}
	}
	return p, len(raw) == len(pattern)
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rte, p, status := rt.match(r)
	switch status {
	case http.StatusMethodNotAllowed:
		writeJSON(w, status, envelope{Error: fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)})
		return
	case http.StatusNotFound:
		writeJSON(w, status, envelope{Error: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
		return
	}
	rte.h(w, r, p)
}

// notSupported answers a route of the SDK that agentkernel does not serve yet.
func notSupported(what string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ params) {
		fail(w, fmt.Errorf("%s: %w by this agentkernel server", what, errdefs.ErrNotImplemented), nil)
	}
}
