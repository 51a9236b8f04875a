package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

func (s *suite) testExitCodes(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		args   []string
		code   int
		signal int
	}{
		{[]string{"true"}, 0, 0},
		{[]string{"false"}, 1, 0},
		{[]string{"sh", "-c", "exit 42"}, 42, 0},
		{[]string{"sh", "-c", "kill -9 $$"}, 137, 9},
		{[]string{"sh", "-c", "kill -15 $$"}, 143, 15},
		{[]string{"sh", "-c", "no-such-command-xyz"}, 127, 0},
	} {
		r := s.exec(ctx, s.shared, agentv1.ExecSpec{Args: tc.args}, nil)
		if r.err != nil || r.status.Code != tc.code || r.status.Signal != tc.signal {
			t.Errorf("%q: status %+v err %v, want code %d signal %d", tc.args, r.status, r.err, tc.code, tc.signal)
		}
	}
	r := s.exec(ctx, s.shared, agentv1.ExecSpec{Args: []string{"no-such-command-xyz"}}, nil)
	if !isAgentCode(r.err, agentv1.CodeCommandNotFound) || !errors.Is(r.err, errdefs.ErrNotFound) {
		t.Errorf("missing command: err = %v, want command_not_found", r.err)
	}
	r = s.exec(ctx, s.shared, agentv1.ExecSpec{Args: []string{"/etc/passwd"}}, nil)
	if !isAgentCode(r.err, agentv1.CodeNotExecutable) {
		t.Errorf("non-executable command: err = %v, want command_not_executable", r.err)
	}
}

func (s *suite) testStdin(t *testing.T) {
	in := make([]byte, 3<<20)
	rand.Read(in)
	r := s.exec(t.Context(), s.shared, agentv1.ExecSpec{Args: []string{"cat"}}, in)
	if r.err != nil || r.status.Code != 0 {
		t.Fatalf("cat: %+v %v", r.status, r.err)
	}
	if r.stdout != string(in) {
		t.Fatalf("stdin round trip: got %d bytes, want %d (equal prefix %v)", len(r.stdout), len(in), bytes.HasPrefix(in, []byte(r.stdout)))
	}
	// No stdin given: the process sees EOF at once instead of hanging.
	r = s.exec(t.Context(), s.shared, agentv1.ExecSpec{Args: []string{"cat"}}, nil)
	if r.err != nil || r.status.Code != 0 || r.stdout != "" {
		t.Fatalf("cat without stdin: %+v %v %q", r.status, r.err, r.stdout)
	}
}

// countingWriter counts bytes and checks they are all zero, holding none.
type countingWriter struct {
	n       atomic.Int64
	nonZero atomic.Bool
}

func (w *countingWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b != 0 {
			w.nonZero.Store(true)
			break
		}
	}
	w.n.Add(int64(len(p)))
	return len(p), nil
}

func (s *suite) testLargeOutput(t *testing.T) {
	const size = 100_000_000
	var out, errw countingWriter
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	peak := uint64(0)
	done := make(chan struct{})
	go func() { // sample the heap while the output streams
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	}()
	st, err := s.m.Exec(t.Context(), s.shared, service.ExecRequest{
		Spec:   agentv1.ExecSpec{Args: []string{"head", "-c", fmt.Sprint(size), "/dev/zero"}},
		Stdout: &out, Stderr: &errw,
	})
	close(done)
	if err != nil || st.Code != 0 {
		t.Fatalf("head: %+v %v", st, err)
	}
	if out.n.Load() != size || out.nonZero.Load() || errw.n.Load() != 0 {
		t.Fatalf("got %d stdout bytes (non-zero: %v), %d stderr bytes; want %d", out.n.Load(), out.nonZero.Load(), errw.n.Load(), size)
	}
	if grew := int64(peak) - int64(before.HeapInuse); grew > 32<<20 {
		t.Errorf("heap grew by %d MiB while streaming: output is being buffered", grew>>20)
	}
}

func (s *suite) testConcurrentExecs(t *testing.T) {
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.exec(t.Context(), s.shared, agentv1.ExecSpec{Args: []string{"sh", "-c", fmt.Sprintf("echo out-%d; echo err-%d >&2; exit %d", i, i, i%7)}}, nil)
			switch {
			case r.err != nil:
				errs <- fmt.Errorf("exec %d: %w", i, r.err)
			case r.stdout != fmt.Sprintf("out-%d\n", i) || r.stderr != fmt.Sprintf("err-%d\n", i) || r.status.Code != i%7:
				errs <- fmt.Errorf("exec %d: stdout %q stderr %q status %+v", i, r.stdout, r.stderr, r.status)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func (s *suite) testEnvWorkdirUser(t *testing.T) {
	r := s.exec(t.Context(), s.shared, agentv1.ExecSpec{
		Args: []string{"sh", "-c", `echo "$FOO|$(pwd)|$(id -u):$(id -g)|$HOME"`},
		Env:  []string{"FOO=bar baz"},
		Dir:  "/tmp",
		User: "65534:65534",
	}, nil)
	if r.err != nil || r.status.Code != 0 {
		t.Fatalf("%+v %v %s", r.status, r.err, r.stderr)
	}
	if r.stdout != "bar baz|/tmp|65534:65534|/\n" && r.stdout != "bar baz|/tmp|65534:65534|/nonexistent\n" {
		t.Errorf("env/workdir/user = %q", r.stdout)
	}
	r = s.exec(t.Context(), s.shared, agentv1.ExecSpec{Args: []string{"sh", "-c", `echo "$(id -u)|$HOME|$PATH"`}}, nil)
	if r.err != nil || r.stdout == "" || r.stdout[:2] != "0|" {
		t.Errorf("default user: %q %v", r.stdout, r.err)
	}
	r = s.exec(t.Context(), s.shared, agentv1.ExecSpec{Args: []string{"true"}, User: "no-such-user"}, nil)
	if r.err == nil {
		t.Errorf("unknown user accepted")
	}
}

func (s *suite) testTimeout(t *testing.T) {
	start := time.Now()
	r := s.exec(t.Context(), s.shared, agentv1.ExecSpec{Args: []string{"sleep", "30"}, TimeoutMS: 300}, nil)
	if r.err != nil || !r.status.TimedOut || r.status.Code != 137 {
		t.Fatalf("timeout: %+v %v", r.status, r.err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("timeout took %v", time.Since(start))
	}
	// Cancelling the caller's context kills the process too.
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan result)
	go func() {
		var out bytes.Buffer
		st, err := s.m.Exec(ctx, s.shared, service.ExecRequest{
			Spec:   agentv1.ExecSpec{Args: []string{"sh", "-c", "echo started; exec sleep 60"}},
			Stdout: io.MultiWriter(&out, pw), Stderr: io.Discard,
		})
		done <- result{stdout: out.String(), status: st, err: err}
	}()
	buf := make([]byte, 8)
	io.ReadAtLeast(pr, buf, 1)
	go io.Copy(io.Discard, pr)
	cancel()
	select {
	case r := <-done:
		if r.err == nil {
			t.Errorf("cancelled exec returned no error: %+v", r.status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled exec did not return")
	}
	pw.Close()
	if !eventually(5*time.Second, func() bool {
		return s.sh(t, s.shared, "cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^sleep$' || true") == "0\n"
	}) {
		t.Error("the cancelled command is still running in the sandbox")
	}
}
