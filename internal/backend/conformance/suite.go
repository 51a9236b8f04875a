package conformance

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/netd"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// Harness is what a backend hands the suite.
type Harness struct {
	// Backend under test. It must be usable here (Probe nil).
	Backend sandbox.Backend
	// Images is the image store Image comes from.
	Images *image.Store
	// Image must provide sh, cat, head, sleep, tty, stty, id and pwd.
	Image string
	// Root is the data root the backend's images and sandboxes live under.
	Root string
	// Network is the network path of sandboxes with network on; with it
	// the suite's sandboxes have network (the default profile's), and the
	// network isolation tests run. Nil runs everything with loopback only.
	Network *netd.Client
}

// suite is the state shared by the subtests.
type suite struct {
	h Harness
	m *service.Manager
	// shared is a running sandbox reused by every test that only execs.
	shared string
	prober string // path of the prober binary on the host
}

// Run runs the whole suite against h.Backend.
func Run(t *testing.T, h Harness) {
	if err := h.Backend.Probe(t.Context()); err != nil {
		testutil.Require(t, false, "backend "+string(h.Backend.Type())+" unusable: "+err.Error())
	}
	before := testutil.Snapshot()
	m, err := service.New(t.Context(), service.Options{
		Root:     h.Root,
		Registry: sandbox.NewRegistry(h.Backend),
		Images:   h.Images,
		Network:  h.Network,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{h: h, m: m, prober: testutil.BuildPackage(t, "./internal/backend/conformance/prober")}
	s.shared = s.create(t, "shared", nil)

	t.Run("Lifecycle", s.testLifecycle)
	t.Run("BadInput", s.testBadInput)
	t.Run("DeadSandbox", s.testDeadSandbox)
	t.Run("GracefulStop", s.testGracefulStop)
	t.Run("ExitCodes", s.testExitCodes)
	t.Run("Stdin", s.testStdin)
	t.Run("StreamLargeOutput", s.testLargeOutput)
	t.Run("ConcurrentExecs", s.testConcurrentExecs)
	t.Run("EnvWorkdirUser", s.testEnvWorkdirUser)
	t.Run("Timeout", s.testTimeout)
	t.Run("Files", s.testFiles)
	t.Run("PTY", s.testPTY)
	t.Run("Detached", s.testDetached)
	t.Run("Isolation", s.testIsolation)
	t.Run("MemoryLimit", s.testMemoryLimit)
	t.Run("PidsLimit", s.testPidsLimit)
	t.Run("OCIImage", s.testOCIImage)
	if h.Network != nil {
		t.Run("Network", s.testNetwork)
	}

	if err := m.Remove(context.WithoutCancel(t.Context()), s.shared); err != nil {
		t.Errorf("removing shared sandbox: %v", err)
	}
	m.Close()
	if list, _ := m.List(context.Background()); len(list) != 0 {
		t.Errorf("sandboxes left after the suite: %d", len(list))
	}
	if h.Network != nil {
		if err := h.Network.Stop(context.Background()); err != nil {
			t.Errorf("stopping the network daemon: %v", err)
		}
	}
	testutil.CheckNoLeaks(t, before)
}

// create makes and starts a sandbox named prefix-<backend>, removed when t ends.
func (s *suite) create(t *testing.T, prefix string, edit func(*sandbox.Config)) string {
	t.Helper()
	cfg, _, err := sandbox.Resolve(sandbox.Options{Image: s.h.Image, NetworkUnavailable: s.m.NetworkUnavailable()})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&cfg)
	}
	name := prefix + "-" + string(s.h.Backend.Type())
	ctx := t.Context()
	if _, err := s.m.Create(ctx, service.CreateRequest{Name: name, Backend: string(s.h.Backend.Type()), Config: cfg}); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if prefix != "shared" {
		t.Cleanup(func() {
			if err := s.m.Remove(context.Background(), name); err != nil {
				t.Errorf("remove %s: %v", name, err)
			}
		})
	}
	if _, err := s.m.Start(ctx, name); err != nil {
		if prefix == "shared" {
			s.m.Remove(context.Background(), name)
		}
		t.Fatalf("start %s: %v", name, err)
	}
	return name
}

// result is one finished exec.
type result struct {
	stdout, stderr string
	status         agentv1.ExitStatus
	err            error
}

// exec runs args in sandbox name with optional stdin.
func (s *suite) exec(ctx context.Context, name string, spec agentv1.ExecSpec, stdin []byte) result {
	var out, errb bytes.Buffer
	req := service.ExecRequest{Spec: spec, Stdout: &out, Stderr: &errb}
	if stdin != nil {
		req.Stdin = bytes.NewReader(stdin)
	}
	st, err := s.m.Exec(ctx, name, req)
	return result{stdout: out.String(), stderr: errb.String(), status: st, err: err}
}

// sh runs a shell command in the shared sandbox and requires exit 0.
func (s *suite) sh(t *testing.T, name, script string) string {
	t.Helper()
	r := s.exec(t.Context(), name, agentv1.ExecSpec{Args: []string{"sh", "-c", script}}, nil)
	if r.err != nil || r.status.Code != 0 {
		t.Fatalf("sh -c %q: err=%v status=%+v stderr=%q", script, r.err, r.status, r.stderr)
	}
	return r.stdout
}

// installProber copies the prober binary into a sandbox at /tmp/prober.
func (s *suite) installProber(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(s.prober)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.m.WriteFile(t.Context(), name, "/tmp/prober", f, 0o755); err != nil {
		t.Fatalf("installing prober: %v", err)
	}
	return "/tmp/prober"
}

// probe runs the prober in a sandbox; ok reports whether the operation succeeded.
func (s *suite) probe(t *testing.T, name string, args ...string) (ok bool, out string) {
	t.Helper()
	r := s.exec(t.Context(), name, agentv1.ExecSpec{Args: append([]string{"/tmp/prober"}, args...)}, nil)
	if r.err != nil {
		t.Fatalf("prober %v: %v", args, r.err)
	}
	if r.status.Code > 1 {
		t.Fatalf("prober %v: exit %+v: %s%s", args, r.status, r.stdout, r.stderr)
	}
	return r.status.Code == 0, strings.TrimSpace(r.stdout)
}

// eventually polls cond until it holds or the timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func isAgentCode(err error, code string) bool {
	var ae *agentv1.Error
	return errors.As(err, &ae) && ae.Code == code
}
