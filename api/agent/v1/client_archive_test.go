package v1

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestArchiveClient(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathArchive, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("path") {
		case "/skipped":
			w.Header().Set("Content-Type", "application/x-tar")
			w.Header().Set("Trailer", TrailerArchiveSkipped)
			io.WriteString(w, "TAR")
			w.Header().Set(TrailerArchiveSkipped, `{"count":3,"paths":["/a","/b"]}`)
		case "/garbled":
			w.Header().Set("Content-Type", "application/x-tar")
			w.Header().Set("Trailer", TrailerArchiveSkipped)
			io.WriteString(w, "TAR")
			w.Header().Set(TrailerArchiveSkipped, `{nonsense`)
		case "/reset":
			w.Header().Set("Content-Type", "application/x-tar")
			io.WriteString(w, "TA")
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		default:
			io.WriteString(w, "<html>")
		}
	})
	c, _ := fakeAgent(t, mux)
	read := func(path string) (string, ArchiveSkipped, error) {
		rc, err := c.Archive(t.Context(), path)
		if err != nil {
			return "", ArchiveSkipped{}, err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		return string(b), rc.Skipped(), err
	}
	body, sk, err := read("/skipped")
	if err != nil || body != "TAR" || sk.Count != 3 || len(sk.Paths) != 2 || sk.Paths[1] != "/b" {
		t.Errorf("skipped: %q %+v %v", body, sk, err)
	}
	if _, sk, err := read("/garbled"); err != nil || sk.Count != 1 || sk.Paths != nil {
		t.Errorf("a garbled trailer still says something was skipped: %+v %v", sk, err)
	}
	_, _, err = read("/reset")
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInternal || !strings.Contains(e.Message, "cut off") {
		t.Errorf("reset stream: %v", err)
	}
	if _, _, err := read("/html"); !errors.As(err, &e) || !strings.Contains(e.Message, "not a tar") {
		t.Errorf("wrong content type: %v", err)
	}
}
