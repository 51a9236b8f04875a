package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// decode reads r's JSON body into v. Unknown fields are ignored, as
// agentkernel's server does; malformed JSON, wrong types, an empty body
// or trailing data are invalid arguments (400), an oversized body 413.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(bodyReadTimeout))
	defer rc.SetReadDeadline(time.Time{})
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(v)
	if err == nil {
		if err = dec.Decode(&json.RawMessage{}); err == io.EOF {
			return nil
		} else if err == nil {
			return badRequest("invalid JSON: data after the object")
		}
	}
	var mbe *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return fmt.Errorf("%w: the limit is %d bytes", errTooLarge, mbe.Limit)
	case errors.Is(err, io.EOF):
		return badRequest("empty request body: want a JSON object")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return badRequest("invalid JSON: want an object, got %s", typeErr.Value)
		}
		return badRequest("invalid JSON: field %q: want %s, got %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	return badRequest("invalid JSON: %v", err)
}

// networkFields are the network options of create and run bodies, beyond
// the SDK's: access, egress rules, an agent preset, published ports.
type networkFields struct {
	Network *bool            `json:"network"`
	Egress  *netpolicy.Rules `json:"egress"`
	Preset  string           `json:"network_preset"`
	Ports   []string         `json:"ports"`
}

// options adds the network fields to o.
func (n networkFields) options(o sandbox.Options) (sandbox.Options, error) {
	o.Network, o.NetworkPreset = n.Network, n.Preset
	if n.Egress != nil {
		o.Egress = *n.Egress
	}
	for _, p := range n.Ports {
		pm, err := sandbox.ParsePort(p)
		if err != nil {
			return o, err
		}
		o.Ports = append(o.Ports, pm)
	}
	return o, nil
}

// resolveConfig turns a request's options into a sandbox configuration
// (the profile's defaults where they are left out); netErr says why
// sandboxes cannot have network access here, if they cannot.
func resolveConfig(netErr error, o sandbox.Options) (sandbox.Config, error) {
	o.NetworkUnavailable = netErr
	cfg, _, err := sandbox.Resolve(o)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// maxOutput caps the output a command's response carries.
const maxOutput = 16 << 20

// outputBuffer collects a command's stdout and stderr, interleaved, up to
// maxOutput bytes; the rest is counted and dropped.
type outputBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	dropped int64
}

func (o *outputBuffer) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := min(len(p), maxOutput-o.buf.Len())
	o.buf.Write(p[:n])
	o.dropped += int64(len(p) - n)
	return len(p), nil
}

func (o *outputBuffer) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dropped > 0 {
		return fmt.Sprintf("%s\n[agentkernel: %d more bytes of output dropped]\n", o.buf.String(), o.dropped)
	}
	return o.buf.String()
}

// kindError is an error with its own message that still wraps a kind.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }
