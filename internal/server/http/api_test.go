//go:build linux

package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	httpapi "github.com/agentkernel-go/agentkernel/internal/server/http"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

func withKeys(keys ...string) func(*httpapi.Options) {
	return func(o *httpapi.Options) { o.APIKeys = keys }
}

func TestAuth(t *testing.T) {
	a := newAPI(t, withKeys("key-one", "key-two"))
	a.key = ""
	a.do("GET", "/health", nil).expect(t, 200, "health without a key")
	for _, h := range []string{"", "Bearer wrong", "Bearer key-one-and-more", "Basic a2V5LW9uZQ==", "key-one"} {
		req, _ := http.NewRequest("GET", a.url+"/sandboxes", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		r := a.send(req).expect(t, 401, fmt.Sprintf("Authorization %q", h))
		if r.env.Error == "" {
			t.Fatal("401 without a message")
		}
	}
	for _, k := range []string{"key-one", "key-two"} {
		a.key = k
		a.do("GET", "/sandboxes", nil).expect(t, 200, "list with "+k)
	}
	// A 501 route is behind the key too.
	a.key = ""
	a.do("GET", "/snapshots", nil).expect(t, 401, "snapshots without a key")
}

func TestHealthEnvelope(t *testing.T) {
	a := newAPI(t)
	r := a.do("GET", "/health", nil).expect(t, 200, "health")
	if strings.TrimSpace(r.raw) != `{"success":true,"data":"ok"}` {
		t.Fatalf("health: %s", r.raw)
	}
}

func TestBadInput(t *testing.T) {
	a := newAPI(t)
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"POST", "/run", `{"command": ["echo"`, 400},
		{"POST", "/run", `{"command": "echo hi"}`, 400},
		{"POST", "/run", `{"command": [1, 2]}`, 400},
		{"POST", "/run", `["echo"]`, 400},
		{"POST", "/run", ``, 400},
		{"POST", "/run", `{"command": ["true"]} {}`, 400},
		{"POST", "/run", `{"command": []}`, 400},
		{"POST", "/run", `{"command": ["true"], "profile": "nope"}`, 400},
		{"POST", "/run/stream", `{"command": 7}`, 400},
		{"POST", "/batch/run", `{"commands": [{"command": []}]}`, 400},
		{"POST", "/sandboxes", `{"name": 5}`, 400},
		{"POST", "/sandboxes", `{"name": "Bad Name!"}`, 400},
		{"POST", "/sandboxes", `{"name": "x", "memory_mb": "lots"}`, 400},
		{"GET", "/sandboxes/no-such-sandbox", nil, 404},
		{"DELETE", "/sandboxes/no-such-sandbox", nil, 404},
		{"POST", "/sandboxes/no-such-sandbox/exec", `{"command": ["true"]}`, 404},
		{"GET", "/sandboxes/no-such-sandbox/files/tmp/a", nil, 404},
		{"GET", "/sandboxes/by-uuid/not-a-uuid", nil, 400},
		{"GET", "/sandboxes/by-uuid/6f1c2c9e-3a52-4f43-9a0e-4a4f2b0c1d2e", nil, 404},
		{"GET", "/no/such/route", nil, 404},
		{"PATCH", "/run", nil, 405},
	} {
		r := a.do(tc.method, tc.path, tc.body)
		if r.status != tc.status {
			t.Errorf("%s %s %v: status %d, want %d: %s", tc.method, tc.path, tc.body, r.status, tc.status, r.raw)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	a := newAPI(t)
	big := `{"command": ["true"], "image": "` + strings.Repeat("x", 17<<20) + `"}`
	a.do("POST", "/run", big).expect(t, 413, "17 MiB body with a length")
	// Chunked: no Content-Length, the limit stops the read.
	a.do("POST", "/run", io.MultiReader(strings.NewReader(big))).expect(t, 413, "17 MiB chunked body")
	a.do("GET", "/health", nil).expect(t, 200, "health after")
}

func TestUnsupportedRoutes(t *testing.T) {
	a := newAPI(t)
	for _, rt := range [][2]string{
		{"GET", "/orchestrations"}, {"POST", "/orchestrations/x/events"}, {"GET", "/orchestrations/definitions/d"},
		{"GET", "/objects"}, {"PATCH", "/objects/x"}, {"POST", "/objects/c/i/call/m"},
		{"GET", "/schedules"}, {"DELETE", "/schedules/s"},
		{"GET", "/stores"}, {"POST", "/stores/s/query"},
		{"GET", "/snapshots"}, {"POST", "/snapshots"}, {"POST", "/snapshots/s/restore"},
	} {
		r := a.do(rt[0], rt[1], "{}")
		if r.status != 501 || !strings.Contains(r.env.Error, "not yet supported") {
			t.Errorf("%s %s: %d %s, want 501", rt[0], rt[1], r.status, r.raw)
		}
	}
}

func TestSlowHeadersDoNotHang(t *testing.T) {
	a := newAPI(t, func(o *httpapi.Options) { o.ReadHeaderTimeout = 300 * time.Millisecond })
	c, err := net.Dial("tcp", strings.TrimPrefix(a.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ") // never finished
	// Others are served meanwhile.
	a.do("GET", "/health", nil).expect(t, 200, "health beside a slow client")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	io.Copy(io.Discard, c) // returns when the server hangs up
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("server kept a client that never finished its headers for %v", d)
	}
}

func TestRun(t *testing.T) {
	a := newAPI(t)
	var out struct {
		Output   string `json:"output"`
		ExitCode int    `json:"exit_code"`
	}
	a.do("POST", "/run", `{"command": ["sh", "-c", "echo hi; echo err >&2"], "fast": true}`).expect(t, 200, "run").data(&out)
	if out.Output != "hi\nerr\n" && out.Output != "err\nhi\n" {
		t.Fatalf("run output %q", out.Output)
	}
	r := a.do("POST", "/run", `{"command": ["sh", "-c", "echo partial; exit 3"]}`).expect(t, 409, "failing run")
	r.data(&out)
	if out.ExitCode != 3 || out.Output != "partial\n" || !strings.Contains(r.env.Error, "code 3") {
		t.Fatalf("failing run: %s", r.raw)
	}
	if r := a.do("POST", "/run", `{"command": ["no-such-command-anywhere"]}`); r.status < 400 || r.status >= 500 {
		t.Fatalf("missing command: %d %s", r.status, r.raw)
	}
	var batch struct {
		Results []struct {
			Output *string `json:"output"`
			Error  *string `json:"error"`
		} `json:"results"`
	}
	a.do("POST", "/batch/run", `{"commands": [{"command": ["echo", "one"]}, {"command": ["sh", "-c", "exit 2"]}, {"command": ["echo", "three"]}]}`).
		expect(t, 200, "batch").data(&batch)
	if len(batch.Results) != 3 || *batch.Results[0].Output != "one\n" || batch.Results[0].Error != nil ||
		batch.Results[1].Error == nil || *batch.Results[2].Output != "three\n" {
		t.Fatalf("batch: %+v", batch)
	}
}

func TestSandboxRoutes(t *testing.T) {
	a := newAPI(t)
	before := testutil.Snapshot()
	var info struct {
		Name, UUID, Status, Backend, Image string
	}
	a.do("POST", "/sandboxes", `{"name": "web", "vcpus": 1, "memory_mb": 256, "profile": "moderate"}`).expect(t, 201, "create").data(&info)
	if info.Name != "web" || info.Status != "running" || info.UUID == "" || info.Backend == "" {
		t.Fatalf("create: %+v", info)
	}
	a.do("POST", "/sandboxes", `{"name": "web"}`).expect(t, 409, "create twice")
	a.do("GET", "/sandboxes/web", nil).expect(t, 200, "get")
	var byUUID struct{ Name string }
	a.do("GET", "/sandboxes/by-uuid/"+info.UUID, nil).expect(t, 200, "get by uuid").data(&byUUID)
	if byUUID.Name != "web" {
		t.Fatalf("by uuid: %+v", byUUID)
	}
	var list []struct{ Name string }
	a.do("GET", "/sandboxes", nil).expect(t, 200, "list").data(&list)
	if len(list) != 1 || list[0].Name != "web" {
		t.Fatalf("list: %+v", list)
	}

	var out struct {
		Output   string `json:"output"`
		ExitCode int    `json:"exit_code"`
	}
	a.do("POST", "/sandboxes/web/exec", `{"command": ["sh", "-c", "echo $FOO; pwd"], "env": ["FOO=bar"], "workdir": "/tmp", "sudo": true}`).
		expect(t, 200, "exec").data(&out)
	if out.Output != "bar\n/tmp\n" {
		t.Fatalf("exec output %q", out.Output)
	}
	a.do("POST", "/sandboxes/web/exec", `{"command": ["sh", "-c", "echo no; exit 5"]}`).expect(t, 409, "failing exec").data(&out)
	if out.ExitCode != 5 || out.Output != "no\n" {
		t.Fatalf("failing exec: %+v", out)
	}

	// Files: utf8, base64, both path forms the SDK produces, batch, delete.
	a.do("PUT", "/sandboxes/web/files/tmp/hello.txt", `{"content": "héllo\n"}`).expect(t, 200, "write utf8")
	bin := []byte{0, 1, 2, 0xff, 0xfe}
	a.do("PUT", "/sandboxes/web/files//tmp/bin", fmt.Sprintf(`{"content": %q, "encoding": "base64"}`, base64.StdEncoding.EncodeToString(bin))).
		expect(t, 200, "write base64")
	var file struct {
		Content, Encoding string
		Size              int
	}
	a.do("GET", "/sandboxes/web/files//tmp/hello.txt", nil).expect(t, 200, "read utf8").data(&file)
	if file.Content != "héllo\n" || file.Encoding != "utf8" || file.Size != 7 {
		t.Fatalf("read utf8: %+v", file)
	}
	a.do("GET", "/sandboxes/web/files/tmp/bin", nil).expect(t, 200, "read binary").data(&file)
	if got, _ := base64.StdEncoding.DecodeString(file.Content); file.Encoding != "base64" || !bytes.Equal(got, bin) {
		t.Fatalf("read binary: %+v", file)
	}
	var written struct{ Written int }
	a.do("POST", "/sandboxes/web/files", `{"files": {"/work/a.txt": "A", "work/sub/b.txt": "B"}}`).expect(t, 200, "batch write").data(&written)
	if written.Written != 2 {
		t.Fatalf("batch write: %+v", written)
	}
	a.do("POST", "/sandboxes/web/exec", `{"command": ["cat", "/work/a.txt", "/work/sub/b.txt"]}`).expect(t, 200, "cat").data(&out)
	if out.Output != "AB" {
		t.Fatalf("batch-written files: %q", out.Output)
	}
	a.do("DELETE", "/sandboxes/web/files/tmp/hello.txt", nil).expect(t, 200, "delete file")
	a.do("GET", "/sandboxes/web/files/tmp/hello.txt", nil).expect(t, 404, "read deleted")
	for _, p := range []string{
		"/sandboxes/web/files/tmp/../../etc/passwd", "/sandboxes/web/files/..%2f..%2fetc/passwd",
		"/sandboxes/web/files/%2e%2e/etc/passwd", "/sandboxes/web/files/proc/self/environ",
	} {
		a.do("GET", p, nil).expect(t, 400, "traversal "+p)
		a.do("PUT", p, `{"content": "x"}`).expect(t, 400, "traversal write "+p)
	}
	a.do("POST", "/sandboxes/web/files", `{"files": {"/ok": "x", "../../etc/x": "y"}}`).expect(t, 400, "traversal in batch")
	a.do("PUT", "/sandboxes/web/files/tmp/x", `{"content": "%%%", "encoding": "base64"}`).expect(t, 400, "bad base64")
	a.do("PUT", "/sandboxes/web/files/tmp/x", `{"content": "x", "encoding": "rot13"}`).expect(t, 400, "bad encoding")
	a.do("PUT", "/sandboxes/web/files/tmp/x", `{}`).expect(t, 400, "no content")

	// Detached commands.
	var cmd struct {
		ID, Status string
		PID        int
		ExitCode   *int `json:"exit_code"`
	}
	a.do("POST", "/sandboxes/web/exec/detach", `{"command": ["sh", "-c", "echo out; echo err >&2; sleep 30"]}`).expect(t, 201, "detach").data(&cmd)
	if cmd.ID == "" || cmd.Status != "running" || cmd.PID == 0 {
		t.Fatalf("detach: %+v", cmd)
	}
	id := cmd.ID
	var logs map[string]string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		a.do("GET", "/sandboxes/web/exec/detached/"+id+"/logs", nil).expect(t, 200, "logs").data(&logs)
		if logs["stdout"] == "out\n" && logs["stderr"] == "err\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs: %+v", logs)
		}
	}
	logs = nil
	a.do("GET", "/sandboxes/web/exec/detached/"+id+"/logs?stream=stderr", nil).expect(t, 200, "stderr logs").data(&logs)
	if _, has := logs["stdout"]; has || logs["stderr"] != "err\n" {
		t.Fatalf("stderr logs: %+v", logs)
	}
	var cmds []struct{ ID string }
	a.do("GET", "/sandboxes/web/exec/detached", nil).expect(t, 200, "detached list").data(&cmds)
	if len(cmds) != 1 || cmds[0].ID != id {
		t.Fatalf("detached list: %+v", cmds)
	}
	a.do("DELETE", "/sandboxes/web/exec/detached/"+id, nil).expect(t, 200, "kill")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		a.do("GET", "/sandboxes/web/exec/detached/"+id, nil).expect(t, 200, "status").data(&cmd)
		if cmd.Status == "failed" && cmd.ExitCode != nil && *cmd.ExitCode == 137 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after kill: %+v", cmd)
		}
	}
	a.do("GET", "/sandboxes/web/exec/detached/nope", nil).expect(t, 404, "unknown detached")

	a.do("POST", "/sandboxes/web/stop", nil).expect(t, 200, "stop").data(&info)
	if info.Status != "stopped" {
		t.Fatalf("stop: %+v", info)
	}
	a.do("POST", "/sandboxes/web/exec", `{"command": ["true"]}`).expect(t, 409, "exec in a stopped sandbox")
	a.do("POST", "/sandboxes/web/start", nil).expect(t, 200, "start")
	a.do("DELETE", "/sandboxes/web", nil).expect(t, 200, "delete")
	a.do("GET", "/sandboxes/web", nil).expect(t, 404, "get after delete")
	testutil.CheckNoLeaks(t, before)
}

// streamRun starts /run/stream and returns its events.
func streamRun(t *testing.T, ctx context.Context, a *apiServer, body string) (*http.Response, <-chan sseEvent) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", a.url+"/run/stream", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp, readEvents(resp.Body)
}

func TestRunStreamIsLive(t *testing.T) {
	a := newAPI(t)
	resp, events := streamRun(t, t.Context(), a, `{"command": ["sh", "-c", "echo a; sleep 2; echo b >&2; exit 4"]}`)
	defer resp.Body.Close()
	var got []sseEvent
	for ev := range events {
		got = append(got, ev)
	}
	var names []string
	var tA, tB time.Time
	for _, ev := range got {
		names = append(names, ev.name)
		if ev.name == "output" && ev.data["data"] == "a\n" && ev.data["stream"] == "stdout" {
			tA = ev.at
		}
		if ev.name == "output" && ev.data["data"] == "b\n" && ev.data["stream"] == "stderr" {
			tB = ev.at
		}
	}
	if strings.Join(names, ",") != "started,output,output,done" {
		t.Fatalf("events %v", names)
	}
	if done := got[len(got)-1].data; done["exit_code"] != float64(4) || done["success"] != false {
		t.Fatalf("done: %v", done)
	}
	if tA.IsZero() || tB.IsZero() || tB.Sub(tA) < 1500*time.Millisecond {
		t.Fatalf("output not streamed as it happened: a at %v, b at %v", tA, tB)
	}
}

func TestRunStreamDisconnectStopsCommand(t *testing.T) {
	a := newAPI(t)
	before := testutil.Snapshot()
	ctx, cancel := context.WithCancel(t.Context())
	resp, events := streamRun(t, ctx, a, `{"command": ["sh", "-c", "echo ready; exec sleep 120"]}`)
	for ev := range events {
		if ev.name == "output" {
			break
		}
	}
	cancel()
	resp.Body.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		list, _ := a.mgr.List(context.Background())
		if len(list) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandbox still there after the client left: %+v", list)
		}
	}
	testutil.CheckNoLeaks(t, before)
}

func TestShutdownCancelsRequests(t *testing.T) {
	a := newAPI(t)
	errc := make(chan *reply, 1)
	go func() {
		req, _ := http.NewRequest("POST", a.url+"/run", strings.NewReader(`{"command": ["sleep", "120"]}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			errc <- nil
			return
		}
		resp.Body.Close()
		errc <- &reply{status: resp.StatusCode}
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if list, _ := a.mgr.List(context.Background()); len(list) == 1 && list[0].Status == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run never started")
		}
	}
	start := time.Now()
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	<-errc
	if list, _ := a.mgr.List(context.Background()); len(list) != 0 {
		t.Fatalf("shutdown left %+v", list)
	}
}

func TestConcurrentRuns(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 20
	}
	a := newAPI(t)
	before := testutil.Snapshot()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"command": ["echo", "run-%d"]}`, i)
			resp, err := http.Post(a.url+"/run", "application/json", strings.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			want := fmt.Sprintf(`"output":"run-%d\n"`, i)
			if resp.StatusCode != 200 || !strings.Contains(string(raw), want) {
				errs <- fmt.Errorf("run %d: %d %s", i, resp.StatusCode, raw)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d concurrent runs in %v", n, time.Since(start))
	if list, _ := a.mgr.List(context.Background()); len(list) != 0 {
		t.Fatalf("left %d sandboxes", len(list))
	}
	testutil.CheckNoLeaks(t, before)
}
