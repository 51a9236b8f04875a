package firecracker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// client speaks Firecracker's REST API (swagger:
// src/firecracker/swagger/firecracker.yaml) on the VM's API socket.
type client struct {
	hc *http.Client
}

func newClient(sock string) *client {
	return &client{hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		// A connection per request: several processes hold handles on
		// one VM, a handle may live for hours between two requests, and
		// Go replays no PUT on a kept-alive connection the server closed.
		DisableKeepAlives: true,
		// Firecracker never compresses its answers: no Accept-Encoding.
		DisableCompression: true,
	}}}
}

// APIError is an error Firecracker answered a request with.
type APIError struct {
	Method, Path string
	Status       int
	// Fault is Firecracker's fault_message: what it found wrong.
	Fault string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("firecracker: %s %s: %s", e.Method, e.Path, e.Fault)
}

// Unwrap is the error's kind: Firecracker answers 400 both for input it
// refuses and for a request in the wrong state, and Config.validate has
// already vetted the input, so a 4xx means the host or the VM is not as
// the request needs it.
func (e *APIError) Unwrap() error {
	if e.Status >= 400 && e.Status < 500 {
		return errdefs.ErrFailedPrecondition
	}
	return errdefs.ErrInternal
}

// maxReply bounds what is read of an answer: instance info and faults
// are a few hundred bytes.
const maxReply = 1 << 20

// do sends in (nil: no body) as JSON and decodes the answer into out
// (nil: ignore it).
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("firecracker: %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, body)
	if err != nil {
		return fmt.Errorf("firecracker: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("firecracker: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return fmt.Errorf("firecracker: %s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var fault struct {
			Message string `json:"fault_message"`
		}
		if json.Unmarshal(reply, &fault) != nil || fault.Message == "" {
			fault.Message = fmt.Sprintf("%s: %q", resp.Status, bytes.TrimSpace(reply))
		}
		return &APIError{Method: method, Path: path, Status: resp.StatusCode, Fault: fault.Message}
	}
	if out != nil {
		if err := json.Unmarshal(reply, out); err != nil {
			return fmt.Errorf("firecracker: %s %s: answer: %w", method, path, err)
		}
	}
	return nil
}

// The request bodies, as the spec's definitions name them. Optional
// fields are omitted when unset, so Firecracker applies its defaults.

type bootSource struct {
	KernelImagePath string `json:"kernel_image_path"`
	InitrdPath      string `json:"initrd_path,omitempty"`
	BootArgs        string `json:"boot_args"`
}

type machineConfig struct {
	VCPUCount  int `json:"vcpu_count"`
	MemSizeMiB int `json:"mem_size_mib"`
}

type drive struct {
	DriveID      string `json:"drive_id"`
	PathOnHost   string `json:"path_on_host"`
	IsRootDevice bool   `json:"is_root_device"`
	IsReadOnly   bool   `json:"is_read_only"`
}

type networkInterface struct {
	IfaceID     string `json:"iface_id"`
	HostDevName string `json:"host_dev_name"`
	GuestMAC    string `json:"guest_mac,omitempty"`
}

type vsock struct {
	GuestCID uint32 `json:"guest_cid"`
	UDSPath  string `json:"uds_path"`
}

type instanceAction struct {
	ActionType string `json:"action_type"`
}

type vmState struct {
	State string `json:"state"`
}

type snapshotCreate struct {
	SnapshotType string `json:"snapshot_type"`
	SnapshotPath string `json:"snapshot_path"`
	MemFilePath  string `json:"mem_file_path"`
}

type memoryBackend struct {
	BackendType string `json:"backend_type"`
	BackendPath string `json:"backend_path"`
}

type snapshotLoad struct {
	SnapshotPath string        `json:"snapshot_path"`
	MemBackend   memoryBackend `json:"mem_backend"`
	ResumeVM     bool          `json:"resume_vm"`
}

// InstanceInfo is GET /'s answer.
type InstanceInfo struct {
	AppName string `json:"app_name"`
	ID      string `json:"id"`
	// State is "Not started", "Running" or "Paused".
	State      string `json:"state"`
	VMMVersion string `json:"vmm_version"`
}

// The instance states of InstanceInfo.
const (
	StateNotStarted = "Not started"
	StateRunning    = "Running"
	StatePaused     = "Paused"
)
