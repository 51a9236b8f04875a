package v1

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
)

// ArchiveReader is the body of GET /v1/archive: an uncompressed tar. A read
// error other than io.EOF means the archive is incomplete (the agent aborted
// it, or the connection broke); io.EOF means it is whole.
type ArchiveReader struct {
	resp    *http.Response
	path    string
	skipped ArchiveSkipped
}

// Archive streams a tar of the directory tree at path (see PROTOCOL.md,
// Archive); the caller closes it.
func (c *Client) Archive(ctx context.Context, path string) (*ArchiveReader, error) {
	resp, err := c.do(ctx, http.MethodGet, PathArchive, url.Values{"path": {path}}, nil, "")
	if err != nil {
		return nil, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/x-tar" {
		resp.Body.Close()
		return nil, Errorf(CodeInternal, "archive of %s: agent answered with %q, not a tar", path, mt)
	}
	return &ArchiveReader{resp: resp, path: path}, nil
}

// Read reads the tar stream.
func (a *ArchiveReader) Read(p []byte) (int, error) {
	n, err := a.resp.Body.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		a.readTrailer()
		err = io.EOF
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	default:
		// The agent resets the stream when it cannot finish the archive;
		// the reason is in its log.
		err = Errorf(CodeInternal, "archive of %s cut off (the agent aborted it or the connection broke; the agent's log says why): %v", a.path, err)
	}
	return n, err
}

// Close releases the stream; closing before EOF cancels the archive.
func (a *ArchiveReader) Close() error {
	return a.resp.Body.Close()
}

// Skipped reports the entries the agent left out because it could not read
// them. It is known once Read returned io.EOF.
func (a *ArchiveReader) Skipped() ArchiveSkipped {
	return a.skipped
}

func (a *ArchiveReader) readTrailer() {
	v := a.resp.Trailer.Get(TrailerArchiveSkipped)
	if v == "" {
		return
	}
	var s ArchiveSkipped
	if err := json.Unmarshal([]byte(v), &s); err != nil || s.Count < len(s.Paths) {
		s = ArchiveSkipped{Count: max(1, s.Count)} // something was left out, whatever the trailer says
	}
	a.skipped = s
}
