package conformance

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
)

// syncBuffer is a bytes.Buffer safe to read while a session writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.ReplaceAll(s.b.String(), "\r\n", "\n")
}

func (s *suite) testPTY(t *testing.T) {
	ctx := t.Context()
	sess, err := s.m.Attach(ctx, s.shared, agentv1.ExecSpec{
		Args: []string{"sh", "-c", "tty; stty size; read line; stty size; echo got:$line"},
		TTY:  true, Rows: 24, Cols: 80, Stdin: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sess.PID() <= 0 {
		t.Errorf("pid = %d", sess.PID())
	}
	var out syncBuffer
	type waited struct {
		st  agentv1.ExitStatus
		err error
	}
	done := make(chan waited, 1)
	go func() {
		st, err := sess.Wait(&out, &out)
		done <- waited{st, err}
	}()
	// Resize only once the first size was printed, then answer read: the
	// second stty size must see the new size.
	if !eventually(10*time.Second, func() bool { return strings.Contains(out.String(), "24 80\n") }) {
		t.Fatalf("initial size never printed:\n%s", out.String())
	}
	if err := sess.Resize(40, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Stdin().Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	var w waited
	select {
	case w = <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("pty session did not end:\n%s", out.String())
	}
	text := out.String()
	if w.err != nil || w.st.Code != 0 {
		t.Fatalf("pty session: %+v %v\n%s", w.st, w.err, text)
	}
	if !regexp.MustCompile(`(?m)^/dev/pts/\d+$`).MatchString(text) {
		t.Errorf("tty did not print a pts device:\n%s", text)
	}
	if !strings.Contains(text, "40 100\n") {
		t.Errorf("stty size after resize missing:\n%s", text)
	}
	if !strings.Contains(text, "got:hello") {
		t.Errorf("stdin through the pty missing:\n%s", text)
	}
}
