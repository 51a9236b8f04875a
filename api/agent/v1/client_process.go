package v1

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// StartProcess starts a detached process.
func (c *Client) StartProcess(ctx context.Context, spec ExecSpec) (ProcessInfo, error) {
	var pi ProcessInfo
	err := c.doJSON(ctx, http.MethodPost, PathProcesses, nil, &spec, &pi)
	return pi, err
}

// Processes lists detached processes.
func (c *Client) Processes(ctx context.Context) ([]ProcessInfo, error) {
	var out []ProcessInfo
	err := c.doJSON(ctx, http.MethodGet, PathProcesses, nil, nil, &out)
	return out, err
}

// Process returns one detached process.
func (c *Client) Process(ctx context.Context, id string) (ProcessInfo, error) {
	var pi ProcessInfo
	err := c.doJSON(ctx, http.MethodGet, processPath(PathProcess, id), nil, nil, &pi)
	return pi, err
}

// DeleteProcess forgets an exited detached process and its logs.
func (c *Client) DeleteProcess(ctx context.Context, id string) error {
	return c.doJSON(ctx, http.MethodDelete, processPath(PathProcess, id), nil, nil, nil)
}

// ProcessLogs returns one output stream ("stdout" or "stderr") of a
// detached process as kept so far, and how many bytes were dropped from its head.
func (c *Client) ProcessLogs(ctx context.Context, id, stream string) (data []byte, truncated int64, err error) {
	resp, err := c.do(ctx, http.MethodGet, processPath(PathLogs, id), url.Values{"stream": {stream}}, nil, "")
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, err = io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, fmt.Errorf("reading logs: %w", err)
	}
	if h := resp.Header.Get(HeaderTruncated); h != "" {
		truncated, _ = strconv.ParseInt(h, 10, 64)
	}
	return data, truncated, nil
}

// KillProcess signals a detached process's group.
func (c *Client) KillProcess(ctx context.Context, id string, sig int) (ProcessInfo, error) {
	var pi ProcessInfo
	err := c.doJSON(ctx, http.MethodPost, processPath(PathKill, id), nil, Signal{Signal: sig}, &pi)
	return pi, err
}

func processPath(route, id string) string {
	return strings.Replace(route, "{id}", url.PathEscape(id), 1)
}
