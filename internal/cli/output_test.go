package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

func TestExitCode(t *testing.T) {
	run := func(err error) error { return &runError{err: err} }
	for _, tc := range []struct {
		err  error
		want int
	}{
		{errors.New("unknown flag: --x"), 2}, // cobra's own errors
		{run(usagef("bad")), 2},
		{run(fmt.Errorf("sandbox %q: %w", "x", errdefs.ErrNotFound)), 3},
		{run(fmt.Errorf("x: %w", errdefs.ErrAlreadyExists)), 4},
		{run(fmt.Errorf("x: %w", errdefs.ErrFailedPrecondition)), 4},
		{run(fmt.Errorf("x: %w", errdefs.ErrUnavailable)), 5},
		{run(fmt.Errorf("x: %w", errdefs.ErrNotImplemented)), 5},
		{run(fmt.Errorf("x: %w", errdefs.ErrDeadlineExceeded)), 124},
		{run(errors.New("boom")), 1},
		{run(fmt.Errorf("exec: %w", agentv1.Errorf(agentv1.CodeCommandNotFound, "nope: not found"))), 127},
		{run(fmt.Errorf("exec: %w", agentv1.Errorf(agentv1.CodeNotExecutable, "x: permission denied"))), 126},
		{run(fmt.Errorf("exec: %w %w", agentv1.Errorf(agentv1.CodeCommandNotFound, "nope"), errdefs.ErrNotFound)), 127},
		{run(agentv1.Errorf(agentv1.CodeNotFound, "no such file")), 3},
		{run(agentv1.Errorf(agentv1.CodeInvalidArgument, "bad")), 2},
		{run(fmt.Errorf("%w %w", agentv1.Errorf(agentv1.CodeNotFound, "x"), errdefs.ErrNotFound)), 3},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestExitPrintsOneLine(t *testing.T) {
	var stderr bytes.Buffer
	a := newApp(nil, &bytes.Buffer{}, &stderr)
	code := a.exit(&runError{err: errors.Join(errors.New("first"), fmt.Errorf("second: %w", errdefs.ErrNotFound))})
	if code != 3 || stderr.String() != "agentkernel: first; second: not found\n" {
		t.Errorf("code %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := a.exit(&runError{err: &exitStatus{code: 7}}); code != 7 || stderr.Len() != 0 {
		t.Errorf("passthrough: code %d, stderr %q", code, stderr.String())
	}
	if code := a.exit(&runError{err: interrupted(syscall.SIGINT)}); code != 130 || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("interrupted: code %d, stderr %q", code, stderr.String())
	}
}

func TestCommandExit(t *testing.T) {
	if err := commandExit(agentv1.ExitStatus{}, 0); err != nil {
		t.Errorf("exit 0: %v", err)
	}
	var st *exitStatus
	if err := commandExit(agentv1.ExitStatus{Code: 3}, 0); !errors.As(err, &st) || st.code != 3 || st.msg != "" {
		t.Errorf("exit 3: %v", err)
	}
	err := commandExit(agentv1.ExitStatus{Code: 137, Signal: 9, TimedOut: true}, 1500*time.Millisecond)
	if !errors.As(err, &st) || st.code != 124 || st.msg != "command timed out after 1.5s" {
		t.Errorf("timeout: %+v", st)
	}
}

func TestParseCpArg(t *testing.T) {
	for in, want := range map[string]cpArg{
		"dev:/tmp/x":     {sandbox: "dev", path: "/tmp/x"},
		"dev:/tmp/x/":    {sandbox: "dev", path: "/tmp/x"},
		"a_1-b:/":        {sandbox: "a_1-b", path: "/"},
		"./dev:/tmp":     {path: "./dev:/tmp"},
		"/abs/file":      {path: "/abs/file"},
		"rel/a:b":        {path: "rel/a:b"},
		"with space:/x":  {path: "with space:/x"},
		"-":              {path: "-"},
		"file.txt":       {path: "file.txt"},
		"file.tar:/what": {path: "file.tar:/what"},
	} {
		got, err := parseCpArg(in)
		if err != nil || got != want {
			t.Errorf("parseCpArg(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"dev:/a/../b", "dev:/..", "dev:x", "dev:", "dev:/proc/1/environ", "dev:/etc/shadow", "bad-:/x", "dev:/a/./b", ""} {
		_, err := parseCpArg(in)
		if err == nil {
			t.Errorf("parseCpArg(%q) accepted", in)
			continue
		}
		if errdefs.ExitCode(err) != 2 {
			t.Errorf("parseCpArg(%q): exit %d, want 2 (%v)", in, errdefs.ExitCode(err), err)
		}
	}
}

func testInfo() *service.Info {
	p, _ := sandbox.LookupProfile("moderate")
	cfg := p.Config()
	cfg.Env = []string{"SECRET=hunter2"}
	cfg.Mounts = []sandbox.Mount{{Source: "/src", Target: "/workspace"}}
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return &service.Info{ID: "0b9a3c4e-0000-4000-8000-000000000000", Name: "dev", Backend: sandbox.Native,
		Status: sandbox.StatusRunning, Config: cfg, CreatedAt: start, StartedAt: &start, PID: 4242,
		Ports: []sandbox.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}}
}

func TestInfoJSONShape(t *testing.T) {
	in := testInfo()
	var buf bytes.Buffer
	if err := writeJSON(&buf, infoJSON{Info: in, NetworkNote: networkNote(in.Config)}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "name", "backend", "status", "config", "created_at", "started_at", "pid", "network_note"} {
		if _, ok := got[k]; !ok {
			t.Errorf("info --json lacks %q: %s", k, buf.String())
		}
	}
	cfg := got["config"].(map[string]any)
	if cfg["network"] != "none" || cfg["profile"] != "moderate" || cfg["memory_mb"] != float64(512) {
		t.Errorf("config: %v", cfg)
	}
	if note := got["network_note"].(string); !strings.Contains(note, "moderate") || !strings.Contains(note, "not available") {
		t.Errorf("network note %q does not say why", note)
	}
}

func TestInfoHuman(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2025, 1, 2, 3, 9, 5, 0, time.UTC)
	if err := writeInfo(&buf, now, testInfo()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"Name:", "dev", "running (pid 4242)", "native", "moderate", "5m ago",
		"Network:", "none (loopback only: profile moderate", "/src -> /workspace (rw)", "Env:", "SECRET"} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("info prints environment values:\n%s", out)
	}
	r := restrictive()
	buf.Reset()
	writeInfo(&buf, now, r)
	if !strings.Contains(buf.String(), "none (loopback only)") {
		t.Errorf("restrictive network line:\n%s", buf.String())
	}
}

func restrictive() *service.Info {
	in := testInfo()
	p, _ := sandbox.LookupProfile("restrictive")
	in.Config = p.Config()
	return in
}

func TestListTableAndJSON(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2025, 1, 2, 5, 4, 5, 0, time.UTC)
	if err := writeSandboxTable(&buf, now, []*service.Info{testInfo()}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME STATUS BACKEND IMAGE CREATED PORTS" ||
		strings.Join(strings.Fields(lines[1]), " ") != "dev running native host 2h ago 127.0.0.1:8080->80/tcp" {
		t.Errorf("table:\n%s", buf.String())
	}
	buf.Reset()
	writeJSON(&buf, []*service.Info{testInfo()})
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil || len(got) != 1 || got[0]["name"] != "dev" {
		t.Errorf("list --json: %v %s", err, buf.String())
	}
}

func TestDoctorJSONShape(t *testing.T) {
	rep := doctorReport{Chosen: sandbox.Native, Agent: "/usr/local/bin/agentkernel-agent", Backends: []doctorBackend{
		{Backend: sandbox.Native, Isolation: isolationName(sandbox.IsolationNative), Built: true, Usable: true},
		{Backend: sandbox.Docker, Isolation: "-", Reason: "not yet supported in this build"},
	}, Network: doctorNetwork{Mechanism: "netstack", Reason: "no /dev/net/tun"},
		MicroVM: doctorMicroVM{QEMUError: "QEMU: qemu-system-x86_64 not found", Accelerator: "tcg", Reason: "no vmx or svm flag"}}
	var buf bytes.Buffer
	writeJSON(&buf, rep)
	var got struct {
		Chosen   string
		Agent    string
		Backends []struct {
			Backend, Isolation, Reason string
			Built, Usable              bool
		}
		MicroVM struct {
			QEMUError   string `json:"qemu_error"`
			Accelerator string
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Chosen != "native" || len(got.Backends) != 2 || !got.Backends[0].Usable || got.Backends[1].Reason == "" ||
		got.MicroVM.Accelerator != "tcg" || got.MicroVM.QEMUError == "" {
		t.Errorf("doctor --json: %s", buf.String())
	}
	buf.Reset()
	a := newApp(nil, &buf, &bytes.Buffer{})
	writeDoctor(a, rep)
	for _, want := range []string{"native", "namespaces", "usable", "docker", "not usable: not yet supported", "auto-detection picks:  native",
		"sandbox network:       NOT USABLE (sandboxes get loopback only): no /dev/net/tun", "network daemon:        not running",
		"microVM QEMU:          MISSING: QEMU: qemu-system-x86_64 not found", "microVM acceleration:  tcg (no vmx or svm flag)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("doctor lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestAgo(t *testing.T) {
	now := time.Now()
	for d, want := range map[time.Duration]string{5 * time.Second: "5s ago", 3 * time.Minute: "3m ago", 5 * time.Hour: "5h ago", 72 * time.Hour: "3d ago", -time.Second: "just now"} {
		if got := ago(now, now.Add(-d)); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
}
