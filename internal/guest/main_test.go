package guest

import (
	"os"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// TestMain removes the agent binary the boot tests build and the guest
// they share.
func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}
