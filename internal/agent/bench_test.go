package agent_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/agent"
)

// benchAgent runs an in-process agent for a benchmark.
func benchAgent(b *testing.B) *v1.Client {
	sock := b.TempDir() + "/a.sock"
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	s := agent.New(agent.Options{Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	c := v1.NewClient(unixDialer(sock))
	b.Cleanup(func() { c.Close(); cancel(); <-done })
	return c
}

// BenchmarkExecTrue is the round trip of one exec of /bin/true: frame
// stream setup, fork+exec, reaping and the exit frame.
func BenchmarkExecTrue(b *testing.B) {
	c := benchAgent(b)
	for b.Loop() {
		st, err := c.Exec(b.Context(), v1.ExecSpec{Args: []string{"/bin/true"}}, nil, nil, nil)
		if err != nil || st.Code != 0 {
			b.Fatal(st, err)
		}
	}
}

// BenchmarkExecOutput measures streaming throughput (bytes/s) of 64 MiB.
func BenchmarkExecOutput(b *testing.B) {
	c := benchAgent(b)
	const size = 64 << 20
	b.SetBytes(size)
	for b.Loop() {
		var w countingWriter
		st, err := c.Exec(b.Context(), v1.ExecSpec{Args: []string{"head", "-c", strconv.Itoa(size), "/dev/zero"}}, nil, &w, nil)
		if err != nil || st.Code != 0 || w.n != size {
			b.Fatal(st, err, w.n)
		}
	}
}

// BenchmarkFileRoundTrip writes and reads back 1 MiB.
func BenchmarkFileRoundTrip(b *testing.B) {
	c := benchAgent(b)
	data := bytes.Repeat([]byte{7}, 1<<20)
	p := b.TempDir() + "/f"
	b.SetBytes(2 << 20)
	for b.Loop() {
		if err := c.WriteFile(b.Context(), p, bytes.NewReader(data), 0, false); err != nil {
			b.Fatal(err)
		}
		rc, err := c.ReadFile(b.Context(), p)
		if err != nil {
			b.Fatal(err)
		}
		var w countingWriter
		_, err = io.Copy(&w, rc)
		rc.Close()
		if err != nil || w.n != 1<<20 {
			b.Fatal(w.n, err)
		}
	}
}
