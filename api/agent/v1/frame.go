package v1

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// FrameType tags a frame of an exec stream.
//
// An exec stream is the request body (client to agent) and the response body
// (agent to client) of POST /v1/exec, each a sequence of frames:
//
//	+------+----------------+-------------+
//	| type | length (u32 BE)| payload ... |
//	+------+----------------+-------------+
type FrameType uint8

// Client-to-agent frames.
const (
	FrameSpec       FrameType = 1 // JSON ExecSpec; must be first and only once
	FrameStdin      FrameType = 2 // raw bytes
	FrameCloseStdin FrameType = 3 // empty: EOF on the process's stdin
	FrameResize     FrameType = 4 // JSON Resize
	FrameSignal     FrameType = 5 // JSON Signal
)

// Agent-to-client frames.
const (
	FrameStarted FrameType = 16 // JSON Started
	FrameStdout  FrameType = 17 // raw bytes
	FrameStderr  FrameType = 18 // raw bytes
	FrameExit    FrameType = 19 // JSON ExitStatus; last frame
	FrameError   FrameType = 20 // JSON Error; last frame
)

// MaxFramePayload bounds one frame so a peer cannot make the other allocate
// without limit.
const MaxFramePayload = 1 << 20

const frameHeaderLen = 5

// ErrFrameTooLarge is returned for a frame whose length exceeds MaxFramePayload.
var ErrFrameTooLarge = errors.New("frame too large")

func (t FrameType) valid() bool {
	switch t {
	case FrameSpec, FrameStdin, FrameCloseStdin, FrameResize, FrameSignal,
		FrameStarted, FrameStdout, FrameStderr, FrameExit, FrameError:
		return true
	}
	return false
}

// Frame is one decoded frame. Payload is only valid until the next ReadFrame
// on the same FrameReader.
type Frame struct {
	Type    FrameType
	Payload []byte
}

// FrameReader decodes frames from a stream, reusing one buffer.
type FrameReader struct {
	r   io.Reader
	hdr [frameHeaderLen]byte
	buf []byte
}

// NewFrameReader returns a FrameReader reading from r.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: r}
}

// ReadFrame returns the next frame. It returns io.EOF at a clean end of
// stream and io.ErrUnexpectedEOF for a stream cut inside a frame.
func (fr *FrameReader) ReadFrame() (Frame, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return Frame{}, err
	}
	t := FrameType(fr.hdr[0])
	if !t.valid() {
		return Frame{}, fmt.Errorf("unknown frame type %d", t)
	}
	n := binary.BigEndian.Uint32(fr.hdr[1:])
	if n > MaxFramePayload {
		return Frame{}, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
	}
	if cap(fr.buf) < int(n) {
		fr.buf = make([]byte, n)
	}
	p := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return Frame{Type: t, Payload: p}, nil
}

// WriteFrame writes one frame, splitting payloads larger than
// MaxFramePayload into several frames of the same type.
func WriteFrame(w io.Writer, t FrameType, payload []byte) error {
	for {
		chunk := payload
		if len(chunk) > MaxFramePayload {
			chunk = chunk[:MaxFramePayload]
		}
		var hdr [frameHeaderLen]byte
		hdr[0] = byte(t)
		binary.BigEndian.PutUint32(hdr[1:], uint32(len(chunk)))
		if _, err := w.Write(append(hdr[:], chunk...)); err != nil {
			return err
		}
		payload = payload[len(chunk):]
		if len(payload) == 0 {
			return nil
		}
	}
}

// WriteJSONFrame writes v, JSON-encoded, as one frame.
func WriteJSONFrame(w io.Writer, t FrameType, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return WriteFrame(w, t, b)
}

// DecodeJSON decodes a frame's JSON payload into v, rejecting trailing data.
func (f Frame) DecodeJSON(v any) error {
	if err := json.Unmarshal(f.Payload, v); err != nil {
		return fmt.Errorf("decoding frame %d: %w", f.Type, err)
	}
	return nil
}
