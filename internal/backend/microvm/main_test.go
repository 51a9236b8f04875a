//go:build linux

package microvm_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/backend/microvm"
	"github.com/agentkernel-go/agentkernel/internal/guest"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/image/ingest"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// shared is a guest prepared once per test binary (a download and a
// build), linked into each test's data root.
var shared struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	testutil.CleanupBinaries()
	os.Exit(code)
}

// newRoot is a data root with the shared guest in place; it skips where
// QEMU is missing (CI installs it).
func newRoot(t testing.TB) string {
	_, err := exec.LookPath("qemu-system-x86_64")
	testutil.Require(t, err == nil, "qemu-system-x86_64 is not installed")
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "ak-guest-"); shared.err == nil {
			_, shared.err = guest.Prepare(context.Background(), shared.dir, guest.PrepareOptions{})
		}
	})
	if shared.err != nil {
		t.Fatalf("preparing the guest: %v", shared.err)
	}
	root := t.TempDir()
	dir := microvm.GuestDir(root)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(shared.dir, dir); err != nil {
		t.Fatal(err)
	}
	return root
}

// newBackend is the backend under test on root.
func newBackend(t testing.TB, root string) *microvm.Backend {
	return microvm.New(microvm.Options{AgentPath: testutil.BuildBinary(t, "agentkernel-agent"), Root: root})
}

// newManager is a manager of root with only the microVM backend.
func newManager(t testing.TB, root string) *service.Manager {
	m, err := service.New(t.Context(), service.Options{
		Root:     root,
		Registry: sandbox.NewRegistry(newBackend(t, root)),
		Images:   ingest.NewStore(root, image.Options{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}
