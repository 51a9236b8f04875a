package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAgentDependencies keeps the agent, which runs in every sandbox, on
// the standard library, golang.org/x/sys and its own protocol packages.
func TestAgentDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v\n%s", err, out)
	}
	allowed := []string{
		"golang.org/x/sys/",
		"github.com/agentkernel-go/agentkernel/api/agent/v1",
		"github.com/agentkernel-go/agentkernel/internal/agent",
		"github.com/agentkernel-go/agentkernel/internal/caps",
		"github.com/agentkernel-go/agentkernel/internal/netif",
		"github.com/agentkernel-go/agentkernel/internal/xattr",
		"github.com/agentkernel-go/agentkernel/cmd/agentkernel-agent",
	}
	for _, dep := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(dep, "/")
		if !strings.Contains(first, ".") {
			continue // the standard library
		}
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(dep, a)
		}
		if !ok {
			t.Errorf("the agent links %s", dep)
		}
	}
}
