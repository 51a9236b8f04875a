package conformance

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

func (s *suite) testMemoryLimit(t *testing.T) {
	name := s.create(t, "mem", func(c *sandbox.Config) { c.MemoryMB = 256 })
	s.installProber(t, name)
	// Control: a small allocation succeeds.
	if ok, out := s.probe(t, name, "alloc", "64"); !ok {
		t.Fatalf("64 MB allocation failed under a 256 MB limit: %s", out)
	}
	r := s.exec(t.Context(), name, agentv1.ExecSpec{Args: []string{"/tmp/prober", "alloc", "600"}}, nil)
	if r.err != nil || r.status.Code != 137 {
		t.Fatalf("600 MB allocation under a 256 MB limit: status %+v err %v out %q", r.status, r.err, r.stdout)
	}
	// The sandbox (and its agent) survived the OOM kill.
	s.sh(t, name, "true")
}

func (s *suite) testPidsLimit(t *testing.T) {
	name := s.create(t, "pids", func(c *sandbox.Config) { c.PidsLimit = 64 })
	s.installProber(t, name)
	ok, out := s.probe(t, name, "spawn", "200")
	if ok || !strings.Contains(out, "started") {
		t.Fatalf("spawning 200 processes under a 64 pids limit: ok=%v %s", ok, out)
	}
	// A real fork bomb: it stops at the limit, the host stays fine, and the
	// sandbox can still be used once it is killed.
	r := s.exec(t.Context(), name, agentv1.ExecSpec{Args: []string{"sh", "-c", "b() { b | b & }; b; sleep 2"}, TimeoutMS: 3000}, nil)
	if r.err != nil && !strings.Contains(r.err.Error(), "resource temporarily unavailable") {
		t.Logf("fork bomb exec: %v", r.err)
	}
	if err := exec.Command("true").Run(); err != nil {
		t.Fatalf("host cannot fork after the sandbox's fork bomb: %v", err)
	}
	if !eventually(20*time.Second, func() bool {
		r := s.exec(t.Context(), name, agentv1.ExecSpec{Args: []string{"true"}, TimeoutMS: 2000}, nil)
		return r.err == nil && r.status.Code == 0
	}) {
		t.Error("sandbox unusable after its fork bomb was killed (did the agent die?)")
	}
}
