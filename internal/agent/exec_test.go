package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/agent"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

func TestVersion(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	v, err := c.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v.Protocol != v1.ProtocolVersion || v.PID == 0 || v.Agent == "" {
		t.Fatalf("version = %+v", v)
	}
}

func TestExecExitCodes(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	for _, tc := range []struct {
		args []string
		want v1.ExitStatus
	}{
		{[]string{"true"}, v1.ExitStatus{Code: 0}},
		{[]string{"false"}, v1.ExitStatus{Code: 1}},
		{[]string{"sh", "-c", "exit 42"}, v1.ExitStatus{Code: 42}},
		{[]string{"sh", "-c", "kill -9 $$"}, v1.ExitStatus{Code: 137, Signal: 9}},
		{[]string{"sh", "-c", "kill -TERM $$"}, v1.ExitStatus{Code: 143, Signal: 15}},
		{[]string{"sh", "-c", "nonexistent-command-xyz"}, v1.ExitStatus{Code: 127}},
	} {
		_, _, st, err := run(t, c, v1.ExecSpec{Args: tc.args}, nil)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if st != tc.want {
			t.Errorf("%v: status %+v, want %+v", tc.args, st, tc.want)
		}
	}
}

func TestExecStartErrors(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	dir := t.TempDir()
	writeFile(t, dir+"/noexec", "#!/bin/sh\necho hi\n", 0o644)
	for _, tc := range []struct {
		spec v1.ExecSpec
		code string
	}{
		{v1.ExecSpec{Args: []string{"nonexistent-command-xyz"}}, v1.CodeCommandNotFound},
		{v1.ExecSpec{Args: []string{"/nonexistent/cmd"}}, v1.CodeCommandNotFound},
		{v1.ExecSpec{Args: []string{dir + "/noexec"}}, v1.CodeNotExecutable},
		{v1.ExecSpec{Args: []string{dir}}, v1.CodeNotExecutable},
		{v1.ExecSpec{Args: []string{"true"}, Dir: "/nonexistent"}, v1.CodeInvalidArgument},
		{v1.ExecSpec{Args: []string{"true"}, Dir: "relative"}, v1.CodeInvalidArgument},
		{v1.ExecSpec{Args: []string{"true"}, Env: []string{"NOEQUALS"}}, v1.CodeInvalidArgument},
		{v1.ExecSpec{Args: []string{"true"}, User: "no-such-user-xyz"}, v1.CodeInvalidArgument},
		{v1.ExecSpec{}, v1.CodeInvalidArgument},
	} {
		_, _, _, err := run(t, c, tc.spec, nil)
		var e *v1.Error
		if !errors.As(err, &e) || e.Code != tc.code {
			t.Errorf("%+v: err = %v, want code %s", tc.spec, err, tc.code)
		}
	}
}

func TestExecStdoutStderr(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	out, errOut, st, err := run(t, c, v1.ExecSpec{Args: []string{"sh", "-c", "echo out; echo err >&2; echo out2"}}, nil)
	if err != nil || st.Code != 0 {
		t.Fatal(st, err)
	}
	if out != "out\nout2\n" || errOut != "err\n" {
		t.Fatalf("stdout %q stderr %q", out, errOut)
	}
}

func TestExecStdin(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	in := strings.Repeat("hello agent\n", 100000)
	out, _, st, err := run(t, c, v1.ExecSpec{Args: []string{"cat"}}, strings.NewReader(in))
	if err != nil || st.Code != 0 {
		t.Fatal(st, err)
	}
	if out != in {
		t.Fatalf("cat returned %d bytes, want %d", len(out), len(in))
	}
	// Without stdin the process reads /dev/null.
	out, _, _, err = run(t, c, v1.ExecSpec{Args: []string{"sh", "-c", "cat; echo done"}}, nil)
	if err != nil || out != "done\n" {
		t.Fatalf("out %q err %v", out, err)
	}
}

// countingWriter counts bytes and checks they are all zero, holding nothing.
type countingWriter struct {
	n       int64
	nonZero bool
}

func (w *countingWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b != 0 {
			w.nonZero = true
		}
	}
	w.n += int64(len(p))
	return len(p), nil
}

func TestExecLargeOutputStreams(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	const size = 100_000_000
	var out countingWriter
	var errOut strings.Builder
	st, err := c.Exec(t.Context(), v1.ExecSpec{Args: []string{"head", "-c", strconv.Itoa(size), "/dev/zero"}}, nil, &out, &errOut)
	if err != nil || st.Code != 0 {
		t.Fatal(st, err, errOut.String())
	}
	if out.n != size || out.nonZero {
		t.Fatalf("got %d bytes (non-zero seen: %v), want %d zeros", out.n, out.nonZero, size)
	}
}

// slowWriter sleeps on every write, like a client reading slowly.
type slowWriter struct{ n int64 }

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	w.n += int64(len(p))
	return len(p), nil
}

// A slow reader must hold the process back (flow control reaches its pipe),
// not make the agent buffer: the agent's heap stays small while 64 MiB pass.
func TestExecSlowReaderBackpressure(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	// Collect garbage early, so the heap in use measures what is held,
	// not what the collector has not got to yet.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	const size = 64 << 20
	var w slowWriter
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}()
	st, err := c.Exec(t.Context(), v1.ExecSpec{Args: []string{"head", "-c", strconv.Itoa(size), "/dev/zero"}}, nil, &w, nil)
	close(stop)
	<-sampled
	if err != nil || st.Code != 0 || w.n != size {
		t.Fatal(st, err, w.n)
	}
	// Client and agent share this process: the client's HTTP/2 window
	// (4 MiB per stream) plus the agent's chunk is all that may pile up.
	if peak > 48<<20 {
		t.Errorf("heap peaked at %d MiB while streaming %d MiB to a slow reader", peak>>20, size>>20)
	}
}

func TestExecConcurrent(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out strings.Builder
			want := fmt.Sprintf("job %d", i)
			st, err := c.Exec(t.Context(), v1.ExecSpec{Args: []string{"sh", "-c", "sleep 0.2; echo \"$0\"; exit $1", want, strconv.Itoa(i % 3)}}, nil, &out, nil)
			switch {
			case err != nil:
				errs <- err
			case st.Code != i%3 || out.String() != want+"\n":
				errs <- fmt.Errorf("job %d: status %+v output %q", i, st, out.String())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestExecEnvDirUser(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	dir := t.TempDir()
	out, _, st, err := run(t, c, v1.ExecSpec{
		Args: []string{"sh", "-c", `echo "$FOO|$PATH|$HOSTNAME|$(pwd)|${TERM:-noterm}"`},
		Env:  []string{"FOO=bar", "PATH=/usr/bin:/bin"},
		Dir:  dir,
	}, nil)
	if err != nil || st.Code != 0 {
		t.Fatal(st, err)
	}
	host, _ := os.Hostname()
	if want := "bar|/usr/bin:/bin|" + host + "|" + dir + "|noterm\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	// The lookup uses the process's PATH, not the agent's.
	_, _, _, err = run(t, c, v1.ExecSpec{Args: []string{"true"}, Env: []string{"PATH=/nonexistent"}}, nil)
	var e *v1.Error
	if !errors.As(err, &e) || e.Code != v1.CodeCommandNotFound {
		t.Fatalf("lookup with empty PATH: %v", err)
	}
	// Default PATH.
	out, _, _, _ = run(t, c, v1.ExecSpec{Args: []string{"sh", "-c", "echo $PATH"}}, nil)
	if out != "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n" {
		t.Fatalf("default PATH %q", out)
	}
}

func TestExecUser(t *testing.T) {
	testutil.RequireRoot(t)
	etc := t.TempDir()
	writeFile(t, etc+"/passwd", "root:x:0:0:root:/root:/bin/sh\nalice:x:1234:2345:Alice:/nonexistent-home:/bin/sh\n", 0o644)
	writeFile(t, etc+"/group", "root:x:0:\nalice:x:2345:\nwheel:x:10:alice,bob\nstaff:x:50:bob\n", 0o644)
	c := startInProcess(t, agent.Options{EtcDir: etc})
	for _, tc := range []struct{ user, want string }{
		{"65534:65534", "65534 65534 65534||/|/\n"},
		{"alice", "1234 2345 2345 10|alice|/nonexistent-home|/\n"},
		{"alice:50", "1234 50 50 10|alice|/nonexistent-home|/\n"},
		{"1234", "1234 2345 2345|alice|/nonexistent-home|/\n"},
		{"4321", "4321 4321 4321||/|/\n"},
		{"", "0 0 0|root|/root|/root\n"},
		{"root", "0 0 0|root|/root|/root\n"},
	} {
		out, errOut, st, err := run(t, c, v1.ExecSpec{
			Args: []string{"sh", "-c", `echo "$(id -u) $(id -g) $(id -G)|$USER|$HOME|$(pwd)"`},
			User: tc.user,
		}, nil)
		if err != nil || st.Code != 0 {
			t.Fatalf("user %q: %v %+v %s", tc.user, err, st, errOut)
		}
		if tc.user == "" || tc.user == "root" {
			if _, err := os.Stat("/root"); err != nil {
				continue
			}
		}
		if out != tc.want {
			t.Errorf("user %q: got %q, want %q", tc.user, out, tc.want)
		}
	}
}

func TestExecTimeout(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	start := time.Now()
	var out strings.Builder
	st, err := c.Exec(t.Context(), v1.ExecSpec{Args: []string{"sh", "-c", "echo $$; exec sleep 30"}, TimeoutMS: 300}, nil, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (v1.ExitStatus{Code: 137, Signal: 9, TimedOut: true}); st != want {
		t.Fatalf("status %+v, want %+v", st, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(out.String()))
	if pid == 0 || !pidGone(pid) {
		t.Fatalf("pid %d still running", pid)
	}
	// A whole group is killed, not just the leader.
	out.Reset()
	st, err = c.Exec(t.Context(), v1.ExecSpec{Args: []string{"sh", "-c", "sleep 30 & echo $!; wait"}, TimeoutMS: 300}, nil, &out, nil)
	if err != nil || !st.TimedOut {
		t.Fatal(st, err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(out.String()))
	waitFor(t, 5*time.Second, func() bool { return pidGone(child) })
}

func TestExecCancelKills(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	s, err := c.StartExec(ctx, v1.ExecSpec{Args: []string{"sleep", "60"}})
	if err != nil {
		t.Fatal(err)
	}
	pid := s.PID()
	if pidGone(pid) {
		t.Fatalf("pid %d not running", pid)
	}
	cancel()
	if _, err := s.Wait(nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel: %v, want context.Canceled", err)
	}
	waitFor(t, 5*time.Second, func() bool { return pidGone(pid) })
}

func TestExecSignal(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	s, err := c.StartExec(t.Context(), v1.ExecSpec{Args: []string{"sh", "-c", "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done"}})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	var st v1.ExitStatus
	var werr error
	go func() {
		st, werr = s.Wait(pw, nil)
		pw.Close()
		close(done)
	}()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(pr, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("read %q %v", buf, err)
	}
	if err := s.Signal(int(syscall.SIGTERM)); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(pr)
	<-done
	if werr != nil || st.Code != 3 || string(rest) != "got-term\n" {
		t.Fatalf("status %+v err %v output %q", st, werr, rest)
	}
}

// A background process holding stdout open must not keep exec from ending.
func TestExecBackgroundHoldsPipe(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	start := time.Now()
	out, _, st, err := run(t, c, v1.ExecSpec{Args: []string{"sh", "-c", "echo before; (sleep 3; echo late) & echo $!"}}, nil)
	if err != nil || st.Code != 0 {
		t.Fatal(st, err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("exec took %v: waited for the background process", d)
	}
	lines := strings.Fields(out)
	if len(lines) != 2 || lines[0] != "before" {
		t.Fatalf("output %q", out)
	}
	bg, _ := strconv.Atoi(lines[1])
	_ = syscall.Kill(bg, syscall.SIGKILL)
	waitFor(t, 5*time.Second, func() bool { return pidGone(bg) })
}

func TestExecCloseStdin(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	s, err := c.StartExec(t.Context(), v1.ExecSpec{Args: []string{"sh", "-c", "cat; echo eof"}, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stdin().Write([]byte("abc\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Stdin().Close(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	st, err := s.Wait(&out, nil)
	if err != nil || st.Code != 0 || out.String() != "abc\neof\n" {
		t.Fatalf("%+v %v %q", st, err, out.String())
	}
	if _, err := s.Stdin().Write([]byte("x")); err == nil {
		t.Fatal("write after Wait succeeded")
	}
}

// A process that never reads its stdin must not stall other streams on the
// same connection, even with megabytes of stdin sent to it.
func TestExecStalledStdinDoesNotBlockOthers(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, err := c.StartExec(ctx, v1.ExecSpec{Args: []string{"sleep", "30"}, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = s.Stdin().Write(make([]byte, 8<<20)) }()
	time.Sleep(200 * time.Millisecond) // let the stalled stream fill its windows
	data := make([]byte, 8<<20)
	p := t.TempDir() + "/upload"
	done := make(chan error, 1)
	go func() { done <- c.WriteFile(t.Context(), p, bytes.NewReader(data), 0, false) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("upload stalled behind a process that does not read stdin")
	}
	start := time.Now()
	cancel()
	if _, err := s.Wait(nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel: %v", err)
	}
	waitFor(t, 5*time.Second, func() bool { return pidGone(s.PID()) })
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %v to kill a process whose stdin is stalled", d)
	}
}
