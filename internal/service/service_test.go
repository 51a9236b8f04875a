//go:build linux

package service_test

import (
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/backend/native"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/image/ingest"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

func TestMain(m *testing.M) {
	native.MaybeInit()
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

// newManager returns a manager over a temp root with the native backend;
// edit, if given, adjusts its options.
func newManager(tb testing.TB, edit ...func(*service.Options)) *service.Manager {
	tb.Helper()
	testutil.RequireRoot(tb)
	root := tb.TempDir()
	opts := service.Options{
		Root:     root,
		Registry: sandbox.NewRegistry(native.New(native.Options{AgentPath: testutil.BuildBinary(tb, "agentkernel-agent"), Root: root})),
		Images:   ingest.NewStore(root, image.Options{}),
	}
	for _, e := range edit {
		e(&opts)
	}
	m, err := service.New(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

func TestRunRemovesSandbox(t *testing.T) {
	m := newManager(t)
	before := testutil.Snapshot()
	cfg, _, _ := sandbox.Resolve(sandbox.Options{Network: new(false)})
	var out strings.Builder
	_, st, err := m.Run(t.Context(), service.RunRequest{
		Create: service.CreateRequest{Config: cfg},
		Exec:   service.ExecRequest{Spec: agentv1.ExecSpec{Args: []string{"sh", "-c", "echo hi; exit 3"}}, Stdout: &out, Stderr: io.Discard},
	})
	if err != nil || st.Code != 3 || out.String() != "hi\n" {
		t.Fatalf("run: %+v %v %q", st, err, out.String())
	}
	if list, _ := m.List(t.Context()); len(list) != 0 {
		t.Fatalf("ephemeral sandbox left: %+v", list)
	}
	// A command that cannot start still removes the sandbox.
	if _, _, err := m.Run(t.Context(), service.RunRequest{
		Create: service.CreateRequest{Config: cfg},
		Exec:   service.ExecRequest{Spec: agentv1.ExecSpec{Args: []string{"no-such-command"}}, Stdout: io.Discard, Stderr: io.Discard},
	}); err == nil {
		t.Fatal("missing command succeeded")
	}
	// Keep leaves it running.
	info, _, err := m.Run(t.Context(), service.RunRequest{
		Create: service.CreateRequest{Name: "kept", Config: cfg},
		Exec:   service.ExecRequest{Spec: agentv1.ExecSpec{Args: []string{"true"}}, Stdout: io.Discard, Stderr: io.Discard},
		Keep:   true,
	})
	if err != nil || info.Name != "kept" {
		t.Fatal(err)
	}
	if got, err := m.Get(t.Context(), "kept"); err != nil || got.Status != sandbox.StatusRunning {
		t.Fatalf("kept: %+v %v", got, err)
	}
	if err := m.Remove(t.Context(), "kept"); err != nil {
		t.Fatal(err)
	}
	testutil.CheckNoLeaks(t, before)
}

func TestTTLExpiryAndGC(t *testing.T) {
	m := newManager(t)
	cfg, _, _ := sandbox.Resolve(sandbox.Options{Network: new(false), TTL: time.Millisecond})
	info, err := m.Create(t.Context(), service.CreateRequest{Name: "short", Config: cfg})
	if err != nil || info.ExpiresAt == nil {
		t.Fatalf("create: %+v %v", info, err)
	}
	if _, err := m.Start(t.Context(), "short"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	removed, err := m.GC(t.Context())
	if err != nil || !slices.Equal(removed, []string{"short"}) {
		t.Fatalf("gc: %v %v", removed, err)
	}
	if list, _ := m.List(t.Context()); len(list) != 0 {
		t.Fatalf("expired sandbox left: %+v", list)
	}
}

// BenchmarkExecRoundTrip measures one exec of `true` through the library
// to a running sandbox, reporting the median as p50-µs.
func BenchmarkExecRoundTrip(b *testing.B) {
	m := newManager(b)
	cfg, _, _ := sandbox.Resolve(sandbox.Options{Network: new(false)})
	if _, err := m.Create(context.Background(), service.CreateRequest{Name: "bench", Config: cfg}); err != nil {
		b.Fatal(err)
	}
	defer m.Remove(context.Background(), "bench")
	if _, err := m.Start(context.Background(), "bench"); err != nil {
		b.Fatal(err)
	}
	req := service.ExecRequest{Spec: agentv1.ExecSpec{Args: []string{"true"}}, Stdout: io.Discard, Stderr: io.Discard}
	var samples []time.Duration
	for b.Loop() {
		t0 := time.Now()
		st, err := m.Exec(context.Background(), "bench", req)
		samples = append(samples, time.Since(t0))
		if err != nil || st.Code != 0 {
			b.Fatal(st, err)
		}
	}
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(samples[len(samples)*99/100].Microseconds()), "p99-µs")
}
