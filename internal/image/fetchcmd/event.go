package fetchcmd

import "github.com/agentkernel-go/agentkernel/internal/image"

// event is one line of the helper's output.
type event struct {
	// Type is "layer" (a download starts: Digest, Size), "bytes" (N more
	// bytes of Digest arrived), "layer_done" (Digest finished; Error if it
	// failed), "result" (Images) or "error" (Kind, Error).
	Type   string         `json:"type"`
	Digest string         `json:"digest,omitempty"`
	Size   int64          `json:"size,omitempty"`
	N      int64          `json:"n,omitempty"`
	Images []*image.Image `json:"images,omitempty"`
	// Kind is the errdefs kind's text ("not found").
	Kind  string `json:"kind,omitempty"`
	Error string `json:"error,omitempty"`
}
