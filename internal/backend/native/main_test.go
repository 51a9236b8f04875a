//go:build linux

package native

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

func TestMain(m *testing.M) {
	MaybeInit()
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

// box is a running sandbox started directly through the backend.
type box struct {
	t    *testing.T
	b    *Backend
	spec *sandbox.Spec
	rt   *sandbox.Runtime
	c    *agentv1.Client
	root string // the data root
}

// startBox starts a sandbox of the host image with the moderate profile,
// edited by edit, under a fresh data root; it is stopped and removed when
// the test ends.
func startBox(t *testing.T, name string, edit func(*sandbox.Config)) *box {
	t.Helper()
	return startBoxAt(t, name, t.TempDir(), edit)
}

// startBoxAt is startBox under the data root root.
func startBoxAt(t *testing.T, name, root string, edit func(*sandbox.Config)) *box {
	t.Helper()
	x, err := tryStartBox(t, name, root, edit)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// tryStartBox may run on any goroutine: it reports instead of failing.
func tryStartBox(t *testing.T, name, root string, edit func(*sandbox.Config)) (*box, error) {
	testutil.RequireRoot(t)
	agent := testutil.BuildBinary(t, "agentkernel-agent")
	// Network off: these tests are about the backend; the network path
	// (netd, netstack) has tests of its own, and the conformance suite
	// runs with it.
	cfg, _, err := sandbox.Resolve(sandbox.Options{Network: new(false)})
	if err != nil {
		return nil, err
	}
	if edit != nil {
		edit(&cfg)
	}
	fs, err := imageStore(root).Resolve(t.Context(), cfg.Image)
	if err != nil {
		return nil, err
	}
	var id [16]byte
	rand.Read(id[:])
	spec := &sandbox.Spec{
		ID: hex.EncodeToString(id[:]), Name: name, Config: cfg, RootFS: fs,
		Dir: filepath.Join(root, "sandboxes", name),
	}
	if err := os.MkdirAll(spec.Dir, 0o700); err != nil {
		return nil, err
	}
	b := New(Options{AgentPath: agent})
	if err := b.Probe(t.Context()); err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	rt, err := b.Start(t.Context(), spec)
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	x := &box{t: t, b: b, spec: spec, rt: rt, root: root}
	x.c = agentv1.NewClient(func(ctx context.Context) (net.Conn, error) { return b.Dial(ctx, spec, x.rt) })
	t.Cleanup(func() {
		x.c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Stop(ctx, spec, x.rt); err != nil {
			t.Errorf("stop: %v", err)
		}
		if err := b.Remove(ctx, spec); err != nil {
			t.Errorf("remove: %v", err)
		}
	})
	return x, nil
}

var (
	storesMu sync.Mutex
	stores   = map[string]*image.Store{}
)

// imageStore returns one store per data root.
func imageStore(root string) *image.Store {
	storesMu.Lock()
	defer storesMu.Unlock()
	if s, ok := stores[root]; ok {
		return s
	}
	s := image.NewStore(root, image.Options{})
	stores[root] = s
	return s
}

func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// run executes args in the sandbox and returns stdout, stderr and the exit code.
func (x *box) run(args ...string) (string, string, int) {
	x.t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(x.t.Context(), 60*time.Second)
	defer cancel()
	st, err := x.c.Exec(ctx, agentv1.ExecSpec{Args: args}, nil, &out, &errb)
	if err != nil {
		x.t.Fatalf("exec %q: %v (stderr %q)", args, err, errb.String())
	}
	return out.String(), errb.String(), st.Code
}

// sh runs a shell script and requires it to succeed.
func (x *box) sh(script string) string {
	x.t.Helper()
	out, errs, code := x.run("sh", "-c", script)
	if code != 0 {
		x.t.Fatalf("sh -c %q: exit %d\nstdout: %s\nstderr: %s", script, code, out, errs)
	}
	return strings.TrimSpace(out)
}

func TestSmoke(t *testing.T) {
	x := startBox(t, "smoke", nil)
	t.Log(x.sh("id; hostname; pwd; ls -la /; cat /proc/self/status | grep -i -E 'cap|seccomp|nonewpriv'; cat /proc/self/mountinfo"))
}

// A start interrupted before its runtime was recorded (the manager died)
// is cleaned up by Stop without a runtime: by the sandbox's cgroups.
func TestStopWithoutRuntime(t *testing.T) {
	x := startBox(t, "unrecorded", nil)
	ex, err := parseExtra(x.rt)
	if err != nil || len(ex.Cgroups) == 0 {
		t.Fatalf("runtime without cgroups: %+v %v", ex, err)
	}
	if err := x.b.Stop(t.Context(), x.spec, nil); err != nil {
		t.Fatal(err)
	}
	if x.b.Alive(t.Context(), x.spec, x.rt) {
		t.Fatalf("init %d still alive after Stop without a runtime", x.rt.PID)
	}
	for _, d := range ex.Cgroups {
		if _, err := os.Stat(d.Path); err == nil {
			t.Errorf("cgroup %s left", d.Path)
		}
	}
}
