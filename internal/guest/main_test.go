package guest

import (
	"os"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// TestMain removes the agent binary the boot tests build.
func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}
