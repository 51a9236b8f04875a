//go:build linux

package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches /metrics without a key and parses it.
func scrape(t *testing.T, a *apiServer) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(a.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// find returns the metric of family name whose labels include want.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func TestMetrics(t *testing.T) {
	a := newAPI(t, withKeys("k"))
	a.do("GET", "/health", nil).expect(t, 200, "health")
	a.do("GET", "/sandboxes", nil).expect(t, 200, "list")
	a.do("GET", "/sandboxes/no-such-box", nil).expect(t, 404, "get unknown")
	a.do("GET", "/sandboxes/other-box", nil).expect(t, 404, "get unknown")
	a.do("GET", "/no/such/route", nil).expect(t, 404, "no route")
	a.do("POST", "/run", map[string]any{"command": []string{"true"}}).expect(t, 200, "run true")
	a.do("POST", "/run", map[string]any{"command": []string{"false"}}).expect(t, 409, "run false")
	a.do("POST", "/run", `{"command": []}`).expect(t, 400, "run nothing")
	a.do("POST", "/sandboxes", map[string]any{"name": "metrics-box"}).expect(t, 201, "create")
	a.do("POST", "/sandboxes/metrics-box/exec", map[string]any{"command": []string{"true"}}).expect(t, 200, "exec true")
	a.do("POST", "/sandboxes/metrics-box/exec", map[string]any{"command": []string{"sh", "-c", "exit 3"}}).expect(t, 409, "exec exit 3")
	a.do("POST", "/sandboxes/no-such-box/exec", map[string]any{"command": []string{"true"}}).expect(t, 404, "exec unknown")
	resp, err := func() (*http.Response, error) {
		req, _ := http.NewRequest("POST", a.url+"/run/stream", strings.NewReader(`{"command": ["sh", "-c", "echo hi; exit 2"]}`))
		req.Header.Set("Authorization", "Bearer k")
		return http.DefaultClient.Do(req)
	}()
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	fams := scrape(t, a)
	backend := ""
	if m := find(fams, "agentkernel_exec_total", map[string]string{"op": "exec", "outcome": "ok"}); m != nil {
		for _, l := range m.Label {
			if l.GetName() == "backend" {
				backend = l.GetValue()
			}
		}
	}
	if backend == "" || backend == "unknown" {
		t.Fatalf("exec of a sandbox counted with backend %q", backend)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		value  float64 // counter or gauge value; for histograms the sample count
	}{
		{"agentkernel_http_requests_total", map[string]string{"method": "GET", "route": "/health", "code": "200"}, 1},
		{"agentkernel_http_requests_total", map[string]string{"method": "GET", "route": "/sandboxes/{name}", "code": "404"}, 2},
		{"agentkernel_http_requests_total", map[string]string{"method": "GET", "route": "unmatched", "code": "404"}, 1},
		{"agentkernel_http_requests_total", map[string]string{"method": "POST", "route": "/run", "code": "409"}, 1},
		{"agentkernel_http_requests_total", map[string]string{"method": "POST", "route": "/sandboxes/{name}/exec", "code": "200"}, 1},
		{"agentkernel_http_request_duration_seconds", map[string]string{"method": "POST", "route": "/run", "code": "200"}, 1},
		{"agentkernel_exec_total", map[string]string{"op": "run", "backend": backend, "outcome": "ok"}, 1},
		{"agentkernel_exec_total", map[string]string{"op": "run", "backend": backend, "outcome": "exit_nonzero"}, 1},
		{"agentkernel_exec_total", map[string]string{"op": "run", "backend": backend, "outcome": "error"}, 1},
		{"agentkernel_exec_total", map[string]string{"op": "exec", "backend": backend, "outcome": "exit_nonzero"}, 1},
		{"agentkernel_exec_total", map[string]string{"op": "exec", "backend": "unknown", "outcome": "error"}, 1},
		{"agentkernel_exec_total", map[string]string{"op": "run_stream", "backend": backend, "outcome": "exit_nonzero"}, 1},
		{"agentkernel_exec_duration_seconds", map[string]string{"op": "exec", "backend": backend, "outcome": "ok"}, 1},
		{"agentkernel_lifecycle_total", map[string]string{"op": "create", "backend": backend, "outcome": "ok"}, 1},
		{"agentkernel_lifecycle_duration_seconds", map[string]string{"op": "create", "backend": backend, "outcome": "ok"}, 1},
		{"agentkernel_sandboxes", map[string]string{"status": "running"}, 1},
		{"agentkernel_sandboxes", map[string]string{"status": "stopped"}, 0},
		{"agentkernel_sandboxes", map[string]string{"status": "created"}, 0},
		{"agentkernel_sandboxes_pooled", nil, 0},
	} {
		m := find(fams, c.name, c.labels)
		if m == nil {
			t.Errorf("no %s%v", c.name, c.labels)
			continue
		}
		var got float64
		switch {
		case m.Counter != nil:
			got = m.Counter.GetValue()
		case m.Gauge != nil:
			got = m.Gauge.GetValue()
		case m.Histogram != nil:
			got = float64(m.Histogram.GetSampleCount())
		}
		if got != c.value {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.value)
		}
	}
	// Raw paths never become labels.
	for _, m := range fams["agentkernel_http_requests_total"].Metric {
		for _, l := range m.Label {
			if strings.Contains(l.GetValue(), "-box") {
				t.Errorf("a raw path in a label: %s=%q", l.GetName(), l.GetValue())
			}
		}
	}
	if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Error("no Go runtime or process metrics")
	}

	a.do("DELETE", "/sandboxes/metrics-box", nil).expect(t, 200, "remove")
	fams = scrape(t, a)
	if m := find(fams, "agentkernel_sandboxes", map[string]string{"status": "running"}); m == nil || m.Gauge.GetValue() != 0 {
		t.Errorf("running sandboxes after remove: %v", m)
	}
	if m := find(fams, "agentkernel_lifecycle_total", map[string]string{"op": "remove", "backend": backend, "outcome": "ok"}); m == nil {
		t.Error("remove not counted")
	}
	if m := find(fams, "agentkernel_http_requests_total", map[string]string{"route": "/metrics", "code": "200"}); m == nil {
		t.Error("the first scrape not counted")
	}
}

// Two servers in one process keep their own metrics.
func TestMetricsPerServer(t *testing.T) {
	a, b := newAPI(t), newAPI(t)
	a.do("GET", "/health", nil).expect(t, 200, "health")
	fa, fb := scrape(t, a), scrape(t, b)
	if find(fa, "agentkernel_http_requests_total", map[string]string{"route": "/health"}) == nil {
		t.Error("server a did not count its request")
	}
	if find(fb, "agentkernel_http_requests_total", map[string]string{"route": "/health"}) != nil {
		t.Error("server b counted server a's request")
	}
}
