// Package testutil holds the helpers every test tier shares: the one place
// that decides to skip a test (with the reason), building the agent binary
// for integration tests, and checking the host for leaks afterwards.
//
// Host side, tests only.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Require skips t with reason unless ok. In CI (CI=true, running as root)
// a missing requirement that CI is meant to provide fails instead of skipping.
func Require(t testing.TB, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" && os.Geteuid() == 0 && os.Getenv("AGENTKERNEL_TEST_ALLOW_SKIP") == "" {
		t.Fatalf("requirement missing in CI: %s", reason)
	}
	t.Skipf("skipping: %s", reason)
}

// RequireRoot skips unless running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "needs root (CI runs it as root)")
}

// RequireLinux skips elsewhere.
func RequireLinux(t testing.TB) {
	t.Helper()
	Require(t, runtime.GOOS == "linux", "needs Linux")
}

var (
	buildOnce sync.Map // binary package path -> *buildResult
)

type buildResult struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// RepoRoot returns the module root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// BuildBinary builds ./cmd/<name> statically once per test process and
// returns its path. Tests must not modify it; TestMain removes it with
// CleanupBinaries.
func BuildBinary(t testing.TB, name string) string {
	t.Helper()
	return BuildPackage(t, "./cmd/"+name)
}

// BuildPackage builds the main package at pkg (relative to the module root)
// statically once per test process and returns the binary's path.
func BuildPackage(t testing.TB, pkg string) string {
	t.Helper()
	name := filepath.Base(pkg)
	v, _ := buildOnce.LoadOrStore(pkg, &buildResult{})
	r := v.(*buildResult)
	r.once.Do(func() {
		dir, err := os.MkdirTemp("", "agentkernel-test-bin-")
		if err != nil {
			r.err = err
			return
		}
		r.path = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", r.path, pkg)
		cmd.Dir = RepoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		r.out, r.err = cmd.CombinedOutput()
	})
	if r.err != nil {
		t.Fatalf("building %s: %v\n%s", name, r.err, r.out)
	}
	return r.path
}

// CleanupBinaries removes what BuildBinary built; call it from TestMain
// after m.Run.
func CleanupBinaries() {
	buildOnce.Range(func(_, v any) bool {
		if r := v.(*buildResult); r.path != "" {
			os.RemoveAll(filepath.Dir(r.path))
		}
		return true
	})
}
