//go:build linux

package native_test

import (
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/backend/conformance"
	"github.com/agentkernel-go/agentkernel/internal/backend/native"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/image/ingest"
	"github.com/agentkernel-go/agentkernel/internal/netd"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// TestConformance runs the shared backend suite on the native backend.
func TestConformance(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	conformance.Run(t, conformance.Harness{
		Backend: native.New(native.Options{AgentPath: testutil.BuildBinary(t, "agentkernel-agent")}),
		Images:  ingest.NewStore(root, image.Options{}),
		Image:   "host",
		Root:    root,
		Network: netd.NewClient(root, func() (string, error) { return testutil.BuildBinary(t, "agentkernel-server"), nil }),
	})
}
