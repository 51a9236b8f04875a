package v1

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	big := bytes.Repeat([]byte{0, 1, 2}, MaxFramePayload) // 3 frames' worth
	if err := WriteJSONFrame(&buf, FrameSpec, ExecSpec{Args: []string{"echo", "hi"}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&buf, FrameStdin, big); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&buf, FrameCloseStdin, nil); err != nil {
		t.Fatal(err)
	}
	fr := NewFrameReader(&buf)
	f, err := fr.ReadFrame()
	if err != nil || f.Type != FrameSpec {
		t.Fatal(f, err)
	}
	var spec ExecSpec
	if err := f.DecodeJSON(&spec); err != nil || spec.Args[1] != "hi" {
		t.Fatal(spec, err)
	}
	var got []byte
	for len(got) < len(big) {
		f, err := fr.ReadFrame()
		if err != nil || f.Type != FrameStdin || len(f.Payload) > MaxFramePayload {
			t.Fatal(f.Type, len(f.Payload), err)
		}
		got = append(got, f.Payload...)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("payload differs")
	}
	if f, err := fr.ReadFrame(); err != nil || f.Type != FrameCloseStdin || len(f.Payload) != 0 {
		t.Fatal(f, err)
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

func TestFrameErrors(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want error
	}{
		{[]byte{byte(FrameStdout), 0, 0}, io.ErrUnexpectedEOF},
		{[]byte{byte(FrameStdout), 0, 0, 0, 4, 'a'}, io.ErrUnexpectedEOF},
		{[]byte{byte(FrameStdout), 0x00, 0x10, 0x00, 0x01}, ErrFrameTooLarge},
	} {
		_, err := NewFrameReader(bytes.NewReader(tc.in)).ReadFrame()
		if !errors.Is(err, tc.want) {
			t.Errorf("%x: %v, want %v", tc.in, err, tc.want)
		}
	}
	if _, err := NewFrameReader(bytes.NewReader([]byte{99, 0, 0, 0, 0})).ReadFrame(); err == nil {
		t.Error("unknown type accepted")
	}
}

// FuzzReadFrame decodes arbitrary streams: no panics, no frame beyond the
// limit, and every frame decoded re-encodes to the bytes it came from.
func FuzzReadFrame(f *testing.F) {
	var seed bytes.Buffer
	WriteJSONFrame(&seed, FrameSpec, ExecSpec{Args: []string{"sh"}, TTY: true})
	WriteFrame(&seed, FrameStdin, []byte("\x00\x01data"))
	WriteJSONFrame(&seed, FrameResize, Resize{Rows: 1, Cols: 2})
	f.Add(seed.Bytes())
	f.Add([]byte{byte(FrameExit), 0, 0, 0, 2, '{', '}'})
	f.Add([]byte{byte(FrameStdout), 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := NewFrameReader(bytes.NewReader(in))
		var out bytes.Buffer
		for {
			fm, err := fr.ReadFrame()
			if err != nil {
				break
			}
			if len(fm.Payload) > MaxFramePayload || !fm.Type.valid() {
				t.Fatalf("frame type %d with %d bytes", fm.Type, len(fm.Payload))
			}
			if err := WriteFrame(&out, fm.Type, fm.Payload); err != nil {
				t.Fatal(err)
			}
			var v any
			_ = fm.DecodeJSON(&v)
		}
		if !bytes.HasPrefix(in, out.Bytes()) {
			t.Fatal("re-encoded frames differ from the input")
		}
	})
}
