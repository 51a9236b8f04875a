package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// openAPIDoc is the part of the document the tests read.
type openAPIDoc struct {
	OpenAPI    string                                   `json:"openapi"`
	Security   []map[string][]string                    `json:"security"`
	Paths      map[string]map[string]openAPIOperation   `json:"paths"`
	Components struct{ SecuritySchemes map[string]any } `json:"components"`
	Raw        map[string]any                           `json:"-"` // the whole document
}

type openAPIOperation struct {
	OperationID  string                     `json:"operationId"`
	Responses    map[string]json.RawMessage `json:"responses"`
	Security     *[]map[string][]string     `json:"security"`
	NotSupported bool                       `json:"x-agentkernel-not-supported"`
}

var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	dec := json.NewDecoder(bytes.NewReader(openAPI))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if err := json.Unmarshal(openAPI, &doc.Raw); err != nil {
		t.Fatal(err)
	}
	return doc
}

// docPath is a router pattern as OpenAPI writes it: {path...} is {path}.
func docPath(pattern string) string {
	return strings.ReplaceAll(pattern, "...}", "}")
}

// answers501 reports whether a route's handler answers 501 to a request
// with an empty body, as notSupported does. Other handlers fail otherwise
// (bad input) or reach the missing manager (a panic, recovered).
func answers501(rte route) (is bool) {
	defer func() {
		if recover() != nil {
			is = false
		}
	}()
	method := rte.method
	if method == "" {
		method = http.MethodGet
	}
	w := httptest.NewRecorder()
	rte.h(w, httptest.NewRequest(method, "/", strings.NewReader("")), params{})
	return w.Code == http.StatusNotImplemented
}

// TestOpenAPIMatchesRouter compares the document with the route table:
// every route documented, nothing documented that the router lacks, 501
// routes marked, open routes open.
func TestOpenAPIMatchesRouter(t *testing.T) {
	doc := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	if s, ok := doc.Components.SecuritySchemes["bearerAuth"].(map[string]any); !ok || s["type"] != "http" || s["scheme"] != "bearer" {
		t.Errorf("no bearer security scheme: %v", doc.Components.SecuritySchemes)
	}
	if len(doc.Security) != 1 || doc.Security[0]["bearerAuth"] == nil {
		t.Errorf("bearer auth is not the default: %v", doc.Security)
	}
	srv, err := New(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}

	// What the router serves: method+path, or any method on a path.
	routes := map[string]route{}   // "post /run"
	anyMethod := map[string]bool{} // "/snapshots"
	for _, rte := range srv.router.routes {
		p := docPath(rte.pattern)
		if rte.method == "" {
			anyMethod[p] = true
			continue
		}
		routes[strings.ToLower(rte.method)+" "+p] = rte
	}
	documented := map[string]openAPIOperation{}
	for p, item := range doc.Paths {
		for m, op := range item {
			if !slices.Contains(openAPIMethods, m) {
				continue // parameters, summary, …
			}
			documented[m+" "+p] = op
		}
	}

	for key, rte := range routes {
		op, found := documented[key]
		if !found {
			t.Errorf("route %s %s is not in openapi.json", rte.method, rte.pattern)
			continue
		}
		if ns := answers501(rte); ns != op.NotSupported || ns && op.Responses["501"] == nil {
			t.Errorf("%s: not supported by the router: %v; in the document: %v (501 response: %v)", key, ns, op.NotSupported, op.Responses["501"] != nil)
		}
		open := openPaths[rte.pattern] && rte.method == http.MethodGet
		if docOpen := op.Security != nil && len(*op.Security) == 0; open != docOpen {
			t.Errorf("%s: open without a key: %v; in the document: %v", key, open, docOpen)
		}
	}
	for p := range anyMethod {
		n := 0
		for _, m := range openAPIMethods {
			if op, found := documented[m+" "+p]; found {
				n++
				if !op.NotSupported || op.Responses["501"] == nil {
					t.Errorf("%s %s: the router answers 501, the document does not say so", m, p)
				}
			}
		}
		if n == 0 {
			t.Errorf("route (any method) %s is not in openapi.json", p)
		}
	}
	for key, op := range documented {
		_, p, _ := strings.Cut(key, " ")
		if _, found := routes[key]; !found && !anyMethod[p] {
			t.Errorf("openapi.json documents %s (%s), the router has no such route", key, op.OperationID)
		}
		if len(op.Responses) == 0 || op.OperationID == "" {
			t.Errorf("%s: no operationId or responses", key)
		}
	}
}

// Every $ref points at something in the document, every operationId is
// unique and every path parameter is declared.
func TestOpenAPIConsistent(t *testing.T) {
	doc := loadOpenAPI(t)
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				var target any = doc.Raw
				for _, seg := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, _ := target.(map[string]any)
					target = m[seg]
				}
				if !strings.HasPrefix(ref, "#/") || target == nil {
					t.Errorf("%s: $ref %s resolves to nothing", where, ref)
				}
			}
			for k, e := range v {
				walk(e, where+"/"+k)
			}
		case []any:
			for _, e := range v {
				walk(e, where)
			}
		}
	}
	walk(doc.Raw, "#")

	ids := map[string]string{}
	rawPaths := doc.Raw["paths"].(map[string]any)
	for p, item := range rawPaths {
		for m, o := range item.(map[string]any) {
			op := o.(map[string]any)
			id, _ := op["operationId"].(string)
			if prev, dup := ids[id]; dup {
				t.Errorf("operationId %q on %s %s and %s", id, m, p, prev)
			}
			ids[id] = m + " " + p
			declared := map[string]bool{}
			params, _ := op["parameters"].([]any)
			for _, prm := range params {
				prm := prm.(map[string]any)
				if prm["in"] == "path" {
					declared[prm["name"].(string)] = true
				}
			}
			for _, seg := range strings.Split(p, "/") {
				if strings.HasPrefix(seg, "{") && !declared[strings.Trim(seg, "{}")] {
					t.Errorf("%s %s: path parameter %s not declared", m, p, seg)
				}
			}
		}
	}
}

// /openapi.json is served from the embedded file, without a key.
func TestOpenAPIServed(t *testing.T) {
	srv, err := New(nil, Options{APIKeys: []string{"secret"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(method, "/openapi.json", nil))
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%s /openapi.json: %d %q", method, w.Code, w.Header().Get("Content-Type"))
		}
		if method == http.MethodGet && !bytes.Equal(w.Body.Bytes(), openAPI) {
			t.Fatal("GET /openapi.json is not the embedded document")
		}
	}
	// Another route still needs the key.
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/sandboxes", nil))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("GET /sandboxes without a key: %d", w.Code)
	}
}
