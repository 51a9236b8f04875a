//go:build linux

package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/image/ingest"
	httpapi "github.com/agentkernel-go/agentkernel/internal/server/http"
	"github.com/agentkernel-go/agentkernel/internal/setup"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// BenchmarkExecTrue is `POST /sandboxes/{name}/exec` of `true` over
// loopback against a running sandbox, one request at a time on a kept-alive
// connection, as an SDK client does. It reports the median and the 99th
// percentile of the round trips (target: p50 ≤ 3 ms).
//
//	go test -run '^$' -bench ExecTrue -benchtime 2000x ./internal/server/http/
func BenchmarkExecTrue(b *testing.B) {
	testutil.RequireLinux(b)
	testutil.RequireRoot(b)
	url := benchServer(b)
	client := &http.Client{}
	post := func(path, body string) (int, []byte) {
		resp, err := client.Post(url+path, "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, raw
	}
	if st, raw := post("/sandboxes", `{"name": "bench"}`); st != http.StatusCreated {
		b.Fatalf("create: %d %s", st, raw)
	}
	const body = `{"command": ["true"]}`
	post("/sandboxes/bench/exec", body) // the agent connection, warm
	samples := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		st, raw := post("/sandboxes/bench/exec", body)
		samples = append(samples, time.Since(t0))
		if st != http.StatusOK {
			b.Fatalf("exec: %d %s", st, raw)
		}
	}
	slices.Sort(samples)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(samples[len(samples)/2]), "p50-ms")
	b.ReportMetric(ms(samples[len(samples)*99/100]), "p99-ms")
}

// benchServer serves the API on loopback over a manager with a private
// root (no warm pool) until the benchmark ends, and then removes every
// sandbox.
func benchServer(b *testing.B) string {
	b.Helper()
	env := map[string]string{"AGENTKERNEL_AGENT": testutil.BuildBinary(b, "agentkernel-agent"), "AGENTKERNEL_POOL": "0", "AGENTKERNEL_SERVER": "/nonexistent/agentkernel-server"}
	mgr, agentErr, err := setup.Manager(context.Background(), setup.Config{Fetcher: ingest.New,
		Root: b.TempDir(), Getenv: func(k string) string { return env[k] },
	})
	if err != nil || agentErr != nil {
		b.Fatal(err, agentErr)
	}
	srv, err := httpapi.New(mgr, httpapi.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, "", "") }()
	b.Cleanup(func() {
		cancel()
		<-done
		list, _ := mgr.List(context.Background())
		for _, in := range list {
			if err := mgr.Remove(context.Background(), in.Name); err != nil {
				b.Error(err)
			}
		}
		mgr.Close()
	})
	return "http://" + ln.Addr().String()
}
