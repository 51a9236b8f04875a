package v1

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// ReadFile streams a file's content; the caller closes it.
func (c *Client) ReadFile(ctx context.Context, path string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, PathFiles, url.Values{"path": {path}}, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// WriteFile writes a file atomically (temp file + rename), creating parent
// directories when mkdirs is set.
func (c *Client) WriteFile(ctx context.Context, path string, r io.Reader, mode uint32, mkdirs bool) error {
	q := url.Values{"path": {path}}
	if mode != 0 {
		q.Set("mode", "0"+strconv.FormatUint(uint64(mode), 8))
	}
	if mkdirs {
		q.Set("mkdirs", "1")
	}
	if r == nil {
		r = http.NoBody
	}
	resp, err := c.do(ctx, http.MethodPut, PathFiles, q, r, "application/octet-stream")
	if err != nil {
		return err
	}
	return drain(resp)
}

// Remove removes a file or, with recursive, a directory tree.
func (c *Client) Remove(ctx context.Context, path string, recursive bool) error {
	q := url.Values{"path": {path}}
	if recursive {
		q.Set("recursive", "1")
	}
	return c.doJSON(ctx, http.MethodDelete, PathFiles, q, nil, nil)
}

// Mkdir creates a directory, and its parents with parents set.
func (c *Client) Mkdir(ctx context.Context, path string, mode uint32, parents bool) error {
	q := url.Values{"path": {path}}
	if mode != 0 {
		q.Set("mode", "0"+strconv.FormatUint(uint64(mode), 8))
	}
	if parents {
		q.Set("parents", "1")
	}
	return c.doJSON(ctx, http.MethodPost, PathMkdir, q, nil, nil)
}

// Stat describes a file without following a final symlink.
func (c *Client) Stat(ctx context.Context, path string) (FileInfo, error) {
	var fi FileInfo
	err := c.doJSON(ctx, http.MethodGet, PathStat, url.Values{"path": {path}}, nil, &fi)
	return fi, err
}

// List describes a directory's entries.
func (c *Client) List(ctx context.Context, path string) ([]FileInfo, error) {
	var out []FileInfo
	err := c.doJSON(ctx, http.MethodGet, PathList, url.Values{"path": {path}}, nil, &out)
	return out, err
}
