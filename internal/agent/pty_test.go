package agent_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/agent"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

func requirePTY(t *testing.T) {
	t.Helper()
	_, err := os.Stat("/dev/ptmx")
	testutil.Require(t, err == nil, "needs /dev/ptmx")
}

func TestPTYTty(t *testing.T) {
	requirePTY(t)
	c := startInProcess(t, agent.Options{})
	var out strings.Builder
	st, err := c.Exec(t.Context(), v1.ExecSpec{Args: []string{"sh", "-c", "tty; echo $TERM; stty size"}, TTY: true, Rows: 30, Cols: 120}, nil, &out, nil)
	if err != nil || st.Code != 0 {
		t.Fatal(st, err, out.String())
	}
	if !regexp.MustCompile(`^/dev/pts/\d+\r\nxterm-256color\r\n30 120\r\n$`).MatchString(out.String()) {
		t.Fatalf("output %q", out.String())
	}
}

func TestPTYResize(t *testing.T) {
	requirePTY(t)
	c := startInProcess(t, agent.Options{})
	s, err := c.StartExec(t.Context(), v1.ExecSpec{Args: []string{"sh", "-c", "read line; stty size"}, TTY: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Resize(40, 100); err != nil {
		t.Fatal(err)
	}
	// The resize frame is applied before the stdin frame behind it.
	if _, err := s.Stdin().Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	st, err := s.Wait(&out, nil)
	if err != nil || st.Code != 0 {
		t.Fatal(st, err)
	}
	if !strings.Contains(out.String(), "40 100\r\n") {
		t.Fatalf("output %q", out.String())
	}
}

// On a terminal, ^C as input reaches the foreground process as SIGINT.
func TestPTYInterrupt(t *testing.T) {
	requirePTY(t)
	c := startInProcess(t, agent.Options{})
	s, err := c.StartExec(t.Context(), v1.ExecSpec{Args: []string{"sleep", "30"}, TTY: true})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let sleep start; ^C before exec would hit the agent's child pre-exec
	if _, err := s.Stdin().Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Wait(nil, nil)
	if err != nil || st.Signal != 2 || st.Code != 130 {
		t.Fatal(st, err)
	}
}
