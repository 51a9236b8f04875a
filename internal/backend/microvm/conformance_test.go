//go:build linux

package microvm_test

import (
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/backend/conformance"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/image/ingest"
	"github.com/agentkernel-go/agentkernel/internal/netd"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// TestConformance runs the shared backend suite on microVMs (under
// software emulation here), with the guest `agentkernel setup` prepares:
// the default image is the guest's busybox userland, and the suite's OCI
// image boots from layer disks.
func TestConformance(t *testing.T) {
	root := newRoot(t)
	conformance.Run(t, conformance.Harness{
		Backend: newBackend(t, root),
		Images:  ingest.NewStore(root, image.Options{}),
		Image:   "host",
		Root:    root,
		Network: netd.NewClient(root, func() (string, error) { return testutil.BuildBinary(t, "agentkernel-server"), nil }),
	})
}
