//go:build linux

package microvm_test

import (
	"io"
	"slices"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// BenchmarkColdStart times a sandbox from Start (the VM's boot) to the
// first exec's end, with network off, as `run` pays without a warm pool.
//
//	go test -run '^$' -bench ColdStart -benchtime 5x ./internal/backend/microvm/
func BenchmarkColdStart(b *testing.B) {
	root := newRoot(b)
	m := newManager(b, root)
	create(b, m, "cold", func(c *sandbox.Config) { c.MemoryMB = 256 })
	defer m.Remove(b.Context(), "cold")
	for b.Loop() {
		if _, err := m.Start(b.Context(), "cold"); err != nil {
			b.Fatal(err)
		}
		if st, err := m.Exec(b.Context(), "cold", service.ExecRequest{Spec: agentv1.ExecSpec{Args: []string{"true"}}, Stdout: io.Discard, Stderr: io.Discard}); err != nil || st.Code != 0 {
			b.Fatalf("exec: %v %+v", err, st)
		}
		b.StopTimer()
		if _, err := m.Stop(b.Context(), "cold"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkExecRoundTrip times `true` run through the agent of a running
// VM, and reports the median and 99th percentile.
//
//	go test -run '^$' -bench ExecRoundTrip -benchtime 300x ./internal/backend/microvm/
func BenchmarkExecRoundTrip(b *testing.B) {
	root := newRoot(b)
	m := newManager(b, root)
	create(b, m, "rt", nil)
	defer m.Remove(b.Context(), "rt")
	if _, err := m.Start(b.Context(), "rt"); err != nil {
		b.Fatal(err)
	}
	var times []time.Duration
	for b.Loop() {
		t0 := time.Now()
		st, err := m.Exec(b.Context(), "rt", service.ExecRequest{Spec: agentv1.ExecSpec{Args: []string{"true"}}, Stdout: io.Discard, Stderr: io.Discard})
		if err != nil || st.Code != 0 {
			b.Fatalf("exec: %v %+v", err, st)
		}
		times = append(times, time.Since(t0))
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-µs")
}
