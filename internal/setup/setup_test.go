package setup

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

func TestDefaultRoot(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"AGENTKERNEL_ROOT": "/r", "XDG_DATA_HOME": "/x", "HOME": "/h"}, "/r"},
		{map[string]string{"XDG_DATA_HOME": "/x", "HOME": "/h"}, "/x/agentkernel"},
		{map[string]string{"HOME": "/h"}, "/h/.local/share/agentkernel"},
	} {
		got, err := DefaultRoot(func(k string) string { return tc.env[k] })
		if err != nil || got != tc.want {
			t.Errorf("%v: got %q, %v; want %q", tc.env, got, err, tc.want)
		}
	}
}

func TestFindAgent(t *testing.T) {
	dir := t.TempDir()
	agent := dir + "/agentkernel-agent"
	if err := os.WriteFile(agent, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := FindAgent(func(k string) string {
		if k == "AGENTKERNEL_AGENT" {
			return agent
		}
		return ""
	})
	if err != nil || got != agent {
		t.Errorf("AGENTKERNEL_AGENT: got %q, %v", got, err)
	}
	_, err = FindAgent(func(k string) string {
		if k == "AGENTKERNEL_AGENT" {
			return dir + "/missing"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "AGENTKERNEL_AGENT") {
		t.Errorf("missing AGENTKERNEL_AGENT: %v", err)
	}
	noexec := dir + "/noexec"
	os.WriteFile(noexec, nil, 0o644)
	if _, err := FindAgent(func(k string) string {
		if k == "AGENTKERNEL_AGENT" {
			return noexec
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "not an executable") {
		t.Errorf("non-executable agent: %v", err)
	}
}

func TestFindAgentNamesPlacesTried(t *testing.T) {
	if _, err := os.Stat(AgentFallbacks[0]); err == nil {
		t.Skip("an agent is installed system-wide")
	}
	if _, err := os.Stat(AgentFallbacks[1]); err == nil {
		t.Skip("an agent is installed system-wide")
	}
	t.Setenv("PATH", t.TempDir())
	_, err := FindAgent(func(string) string { return "" })
	if err == nil {
		t.Skip("an agent binary sits next to the test binary")
	}
	for _, want := range []string{"AGENTKERNEL_AGENT", "$PATH", AgentFallbacks[0], AgentFallbacks[1]} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("missing agent: %v is not ErrUnavailable (exit code 5)", err)
	}
}
