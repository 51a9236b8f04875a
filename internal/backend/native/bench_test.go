//go:build linux

package native

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// BenchmarkStartStop measures a sandbox's whole life: Start (until the
// agent answers), Stop and Remove.
func BenchmarkStartStop(b *testing.B) {
	testutil.RequireRoot(b)
	agent := testutil.BuildBinary(b, "agentkernel-agent")
	root := b.TempDir()
	cfg, _, _ := sandbox.Resolve(sandbox.Options{Network: new(false)})
	fs, err := image.NewStore(root, image.Options{}).Resolve(context.Background(), "host")
	if err != nil {
		b.Fatal(err)
	}
	be := New(Options{AgentPath: agent})
	var start, stop, remove time.Duration
	for i := 0; b.Loop(); i++ {
		var id [8]byte
		rand.Read(id[:])
		spec := &sandbox.Spec{ID: hex.EncodeToString(id[:]), Name: "bench", Config: cfg, RootFS: fs, Dir: filepath.Join(root, "sandboxes", "bench")}
		os.MkdirAll(spec.Dir, 0o700)
		t0 := time.Now()
		rt, err := be.Start(context.Background(), spec)
		if err != nil {
			b.Fatal(err)
		}
		start += time.Since(t0)
		t1 := time.Now()
		if err := be.Stop(context.Background(), spec, rt); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := be.Remove(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
		stop += t2.Sub(t1)
		remove += time.Since(t2)
		os.RemoveAll(spec.Dir)
	}
	b.ReportMetric(float64(start.Microseconds())/float64(b.N), "start-µs/op")
	b.ReportMetric(float64(stop.Microseconds())/float64(b.N), "stop-µs/op")
	b.ReportMetric(float64(remove.Microseconds())/float64(b.N), "remove-µs/op")
}
