//go:build linux

package service_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

func TestAuditLog(t *testing.T) {
	m := newManager(t)
	ctx := service.WithVia(t.Context(), "api")
	cfg, _, _ := sandbox.Resolve(sandbox.Options{Network: new(false)})
	if _, err := m.Create(ctx, service.CreateRequest{Name: "aud", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Remove(context.Background(), "aud") })
	if _, err := m.Start(ctx, "aud"); err != nil {
		t.Fatal(err)
	}
	exec := func(args ...string) {
		t.Helper()
		if _, err := m.Exec(ctx, "aud", service.ExecRequest{Spec: agentv1.ExecSpec{Args: args}, Stdout: io.Discard, Stderr: io.Discard}); err != nil {
			t.Fatal(err)
		}
	}
	exec("sh", "-c", "exit 7")
	if err := m.WriteFile(ctx, "aud", "/tmp/secret.txt", strings.NewReader("do-not-log-me"), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.RemoveFile(ctx, "aud", "/tmp/secret.txt", false); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ExtendTTL(ctx, "aud", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Stop(context.Background(), "aud"); err != nil { // no via
		t.Fatal(err)
	}

	got, err := m.AuditLog(t.Context(), "aud", 0)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range got {
		types = append(types, e.Type)
	}
	want := []string{"sandbox_created", "sandbox_started", "command_executed", "file_written", "file_deleted", "ttl_extended", "sandbox_stopped"}
	if !slices.Equal(types, want) {
		t.Fatalf("audit types %v, want %v", types, want)
	}
	for i, e := range got {
		if e.Timestamp.IsZero() || e.PID == 0 || (i > 0 && e.Timestamp.Before(got[i-1].Timestamp)) {
			t.Errorf("entry %d: bad timestamp or pid: %+v", i, e)
		}
		if wantVia := "api"; e.Type != "sandbox_stopped" && e.Via != wantVia {
			t.Errorf("entry %d via %q, want %q", i, e.Via, wantVia)
		}
	}
	if c := got[0]; c.Name != "aud" || c.Image == "" || c.Backend != "native" {
		t.Errorf("created: %+v", c)
	}
	if x := got[2]; x.Sandbox != "aud" || !slices.Equal(x.Command, []string{"sh", "-c", "exit 7"}) ||
		x.ExitCode == nil || *x.ExitCode != 7 || x.DurationMS == nil || *x.DurationMS <= 0 {
		t.Errorf("exec: %+v", x)
	}
	if got[3].Path != "/tmp/secret.txt" || got[4].Path != "/tmp/secret.txt" {
		t.Errorf("file events: %+v %+v", got[3], got[4])
	}
	if got[5].ExpiresAt == nil {
		t.Errorf("ttl: %+v", got[5])
	}
	if got[6].Via != "" || got[6].Name != "aud" {
		t.Errorf("stopped: %+v", got[6])
	}
	for _, e := range got {
		if strings.Contains(e.Error+e.Path+strings.Join(e.Command, " "), "do-not-log-me") {
			t.Fatalf("file content in the audit log: %+v", e)
		}
	}

	last, err := m.AuditLog(t.Context(), "aud", 2)
	if err != nil || len(last) != 2 || last[0].Type != "ttl_extended" || last[1].Type != "sandbox_stopped" {
		t.Fatalf("limit 2: %+v %v", last, err)
	}
	if _, err := m.AuditLog(t.Context(), "no-such-box", 0); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown sandbox: %v, want not found", err)
	}
	if err := m.Remove(t.Context(), "aud"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AuditLog(t.Context(), "aud", 0); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("removed sandbox: %v, want not found", err)
	}
}
