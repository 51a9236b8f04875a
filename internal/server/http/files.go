package httpapi

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// sandboxPath turns the path of a file route into an absolute sandbox
// path: the SDK sends it as given (`files//tmp/a` or `files/tmp/a`).
// Traversal and the like are rejected (400).
func sandboxPath(raw string) (string, error) {
	rel := strings.TrimLeft(raw, "/")
	if rel == "" {
		return "", badRequest("no file path given")
	}
	p := "/" + rel
	if err := sandbox.ValidatePath(p); err != nil {
		return "", err
	}
	return p, nil
}

// fileContent is FileReadResponse of the SDK.
type fileContent struct {
	Content  string `json:"content"`
	Encoding string `json:"encoding"`
	Size     int    `json:"size"`
}

// readFile is GET /sandboxes/{name}/files/{path}: UTF-8 text as is,
// anything else base64.
func (s *Server) readFile(w http.ResponseWriter, r *http.Request, p params) {
	path, err := sandboxPath(p["path"])
	if err != nil {
		fail(w, err, nil)
		return
	}
	rc, err := s.mgr.ReadFile(r.Context(), p["name"], path)
	if err != nil {
		fail(w, err, nil)
		return
	}
	defer rc.Close()
	limit := s.opts.MaxBody
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		fail(w, err, nil)
		return
	}
	if int64(len(data)) > limit {
		fail(w, fmt.Errorf("%w: file %s is larger than %d bytes", errTooLarge, path, limit), nil)
		return
	}
	res := fileContent{Content: string(data), Encoding: "utf8", Size: len(data)}
	if !utf8.Valid(data) {
		res.Content, res.Encoding = base64.StdEncoding.EncodeToString(data), "base64"
	}
	ok(w, http.StatusOK, res)
}

type fileWrite struct {
	Content  *string `json:"content"`
	Encoding string  `json:"encoding"`
}

func (f *fileWrite) bytes() ([]byte, error) {
	if f.Content == nil {
		return nil, badRequest("content is required")
	}
	switch f.Encoding {
	case "", "utf8", "utf-8":
		return []byte(*f.Content), nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(*f.Content)
		if err != nil {
			return nil, badRequest("content is not valid base64: %v", err)
		}
		return b, nil
	}
	return nil, badRequest("unknown encoding %q (want utf8 or base64)", f.Encoding)
}

// writeFile is PUT (or POST) /sandboxes/{name}/files/{path}.
func (s *Server) writeFile(w http.ResponseWriter, r *http.Request, p params) {
	path, err := sandboxPath(p["path"])
	if err != nil {
		fail(w, err, nil)
		return
	}
	var req fileWrite
	if err := decode(w, r, &req); err != nil {
		fail(w, err, nil)
		return
	}
	data, err := req.bytes()
	if err != nil {
		fail(w, err, nil)
		return
	}
	if err := s.mgr.WriteFile(r.Context(), p["name"], path, bytes.NewReader(data), 0); err != nil {
		fail(w, err, nil)
		return
	}
	ok(w, http.StatusOK, fmt.Sprintf("wrote %d bytes to %s", len(data), path))
}

// deleteFile is DELETE /sandboxes/{name}/files/{path}.
func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request, p params) {
	path, err := sandboxPath(p["path"])
	if err != nil {
		fail(w, err, nil)
		return
	}
	if err := s.mgr.RemoveFile(r.Context(), p["name"], path, false); err != nil {
		fail(w, err, nil)
		return
	}
	ok(w, http.StatusOK, "deleted "+path)
}

// writeFiles is POST /sandboxes/{name}/files: {"files":{path: utf8 content}}.
// Every path is checked before anything is written.
func (s *Server) writeFiles(w http.ResponseWriter, r *http.Request, p params) {
	var req struct {
		Files map[string]string `json:"files"`
	}
	if err := decode(w, r, &req); err != nil {
		fail(w, err, nil)
		return
	}
	paths := make(map[string]string, len(req.Files))
	for raw := range req.Files {
		path, err := sandboxPath(raw)
		if err != nil {
			fail(w, err, nil)
			return
		}
		paths[path] = raw
	}
	sorted := make([]string, 0, len(paths))
	for path := range paths {
		sorted = append(sorted, path)
	}
	slices.Sort(sorted)
	written := 0
	for _, path := range sorted {
		content := req.Files[paths[path]]
		if err := s.mgr.WriteFile(r.Context(), p["name"], path, strings.NewReader(content), 0); err != nil {
			fail(w, err, map[string]int{"written": written})
			return
		}
		written++
	}
	ok(w, http.StatusOK, map[string]int{"written": written})
}
