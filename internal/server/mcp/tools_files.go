package mcpserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// maxBinaryShown is the largest binary file sandbox_file_read shows: its
// base64 form still fits in MaxOutput.
const maxBinaryShown = MaxOutput / 4 * 3

type fileReadInput struct {
	Name string `json:"name" jsonschema:"Name of the sandbox"`
	Path string `json:"path" jsonschema:"Absolute path inside the sandbox to read"`
}

type fileReadOutput struct {
	Path      string `json:"path"`
	Content   string `json:"content" jsonschema:"The file's content: text, or base64 for a binary file"`
	Encoding  string `json:"encoding" jsonschema:"utf8 or base64"`
	Size      int64  `json:"size"`
	Truncated bool   `json:"truncated,omitempty" jsonschema:"The content is cut to 16 KB (head and tail), or left out for a large binary file"`
}

type fileWriteInput struct {
	Name     string `json:"name" jsonschema:"Name of the sandbox"`
	Path     string `json:"path" jsonschema:"Absolute path inside the sandbox where to write the file (parent directories are created)"`
	Content  string `json:"content" jsonschema:"Content to write to the file"`
	Encoding string `json:"encoding,omitempty" jsonschema:"How content is encoded: utf8 (default) or base64"`
}

type fileWriteOutput struct {
	Path  string `json:"path"`
	Bytes int    `json:"bytes"`
}

type writeFilesInput struct {
	Name  string            `json:"name" jsonschema:"Name of the sandbox"`
	Files map[string]string `json:"files" jsonschema:"Map of absolute path to file content (e.g. {\"/app/main.py\": \"print('hello')\"})"`
}

type writeFilesOutput struct {
	Paths []string `json:"paths"`
}

func (t *tools) addFileTools(s *mcp.Server) {
	add(t, s, &mcp.Tool{Name: "sandbox_file_read", Annotations: readOnly(),
		Description: "Read a file from a running sandbox. Text is returned as is (cut to 16 KB, head and " +
			"tail, when longer); a small binary file base64-encoded."}, nil, t.fileRead)
	add(t, s, &mcp.Tool{Name: "sandbox_file_write",
		Description: "Write a file into a running sandbox (the sandbox only, never the host), replacing it atomically."},
		func(s *jsonschema.Schema) { enum(s, "encoding", "utf8", "base64") }, t.fileWrite)
	add(t, s, &mcp.Tool{Name: "sandbox_write_files",
		Description: "Write several files into a running sandbox in one call."},
		func(s *jsonschema.Schema) { prop(s, "files").MinProperties = jsonschema.Ptr(1) }, t.writeFiles)
}

func (t *tools) fileRead(ctx context.Context, in fileReadInput) (string, fileReadOutput, error) {
	rc, err := t.mgr.ReadFile(ctx, in.Name, in.Path)
	if err != nil {
		return "", fileReadOutput{}, err
	}
	defer rc.Close()
	c := &capture{}
	if _, err := io.Copy(c, rc); err != nil {
		return "", fileReadOutput{}, fmt.Errorf("reading %s in sandbox %q: %w", in.Path, in.Name, err)
	}
	out := fileReadOutput{Path: in.Path, Encoding: "utf8", Size: c.Len()}
	data, whole := c.complete()
	switch {
	case utf8.Valid(trimPartialRune(data)):
		out.Content, out.Truncated = c.String(), !whole
		return out.Content, out, nil
	case whole && len(data) <= maxBinaryShown:
		out.Content, out.Encoding = base64.StdEncoding.EncodeToString(data), "base64"
		return fmt.Sprintf("[binary file, %d bytes, base64 encoded]\n%s", len(data), out.Content), out, nil
	}
	out.Encoding, out.Truncated = "base64", true
	return fmt.Sprintf("[binary file, %d bytes: too large to show here (up to %d bytes); read it in parts with "+
		"sandbox_exec, e.g. [\"sh\", \"-c\", \"head -c 4096 FILE | base64\"]]", out.Size, maxBinaryShown), out, nil
}

// trimPartialRune drops a character cut off at the end of b.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

func decodeContent(content, encoding string) ([]byte, error) {
	switch encoding {
	case "", "utf8":
		return []byte(content), nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(content)
		if err != nil {
			return nil, fmt.Errorf("content is not valid base64 (%v): %w", err, errdefs.ErrInvalidArgument)
		}
		return b, nil
	}
	return nil, fmt.Errorf("encoding %q: want utf8 or base64: %w", encoding, errdefs.ErrInvalidArgument)
}

func (t *tools) fileWrite(ctx context.Context, in fileWriteInput) (string, fileWriteOutput, error) {
	data, err := decodeContent(in.Content, in.Encoding)
	if err != nil {
		return "", fileWriteOutput{}, err
	}
	if err := t.mgr.WriteFile(ctx, in.Name, in.Path, bytes.NewReader(data), 0); err != nil {
		return "", fileWriteOutput{}, err
	}
	return fmt.Sprintf("Wrote %d bytes to '%s' in sandbox '%s'", len(data), in.Path, in.Name),
		fileWriteOutput{Path: in.Path, Bytes: len(data)}, nil
}

func (t *tools) writeFiles(ctx context.Context, in writeFilesInput) (string, writeFilesOutput, error) {
	paths := slices.Sorted(maps.Keys(in.Files))
	if len(paths) == 0 {
		return "", writeFilesOutput{}, fmt.Errorf("files map is empty: %w", errdefs.ErrInvalidArgument)
	}
	for _, p := range paths { // bad input changes nothing
		if err := sandbox.ValidatePath(p); err != nil {
			return "", writeFilesOutput{}, err
		}
	}
	for i, p := range paths {
		if err := t.mgr.WriteFile(ctx, in.Name, p, bytes.NewReader([]byte(in.Files[p])), 0); err != nil {
			return "", writeFilesOutput{}, fmt.Errorf("writing %s (%d of %d files written): %w", p, i, len(paths), err)
		}
	}
	return fmt.Sprintf("Wrote %d file(s) to sandbox '%s'", len(paths), in.Name), writeFilesOutput{Paths: paths}, nil
}
