package guest

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// Like the kernel fetch, a failed busybox fetch leaves dir untouched.
func TestFetchBusyboxCleansUp(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := FetchBusybox(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
}

func TestUserland(t *testing.T) {
	testutil.RequireRoot(t)
	_, aptErr := exec.LookPath("apt-get")
	_, dpkgErr := exec.LookPath("dpkg-deb")
	testutil.Require(t, aptErr == nil && dpkgErr == nil, "needs apt-get and dpkg-deb (Debian host)")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	bb, err := FetchBusybox(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	files, err := Userland(bb)
	if err != nil {
		t.Fatal(err)
	}
	byPath := make(map[string]File)
	for _, f := range files {
		byPath[f.Path] = f
	}
	if f := byPath["/bin/busybox"]; f.Source != bb || f.Mode != 0o755 || f.Link != "" {
		t.Errorf("/bin/busybox: %+v", f)
	}
	for _, p := range []string{"/bin/sh", "/usr/bin/env", "/sbin/ip"} {
		if f := byPath[p]; f.Link != "/bin/busybox" {
			t.Errorf("%s: %+v, want a link to /bin/busybox", p, f)
		}
	}
	if _, ok := byPath["/init"]; ok {
		t.Error("userland has /init; that is the agent's")
	}
	for p, mode := range map[string]fs.FileMode{
		"/tmp": fs.ModeDir | fs.ModeSticky | 0o777, "/var/tmp": fs.ModeDir | fs.ModeSticky | 0o777,
		"/root": fs.ModeDir | 0o700, "/proc": fs.ModeDir | 0o755, "/etc/passwd": 0o644,
	} {
		if got := byPath[p].Mode; got != mode {
			t.Errorf("%s: mode %v, want %v", p, got, mode)
		}
	}
	osr := string(byPath["/etc/os-release"].Data)
	if !strings.Contains(osr, "ID=agentkernel\n") || !strings.Contains(osr, `PRETTY_NAME="agentkernel guest (BusyBox v1.`) {
		t.Errorf("os-release:\n%s", osr)
	}
	if !strings.HasPrefix(string(byPath["/etc/passwd"].Data), "root:x:0:0:root:/root:/bin/sh\n") {
		t.Errorf("passwd:\n%s", byPath["/etc/passwd"].Data)
	}
	for _, p := range []string{"/etc/hostname", "/etc/resolv.conf"} {
		if _, ok := byPath[p]; ok {
			t.Errorf("%s present; the agent or the sandbox provides it", p)
		}
	}
	if err := WriteInitramfs(io.Discard, files); err != nil {
		t.Errorf("userland does not make an archive: %v", err)
	}
}

// Userland refuses what the guest could not run: it has no dynamic loader.
func TestUserlandRejectsNonStatic(t *testing.T) {
	text := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Userland(text); err == nil {
		t.Error("script: no error")
	}
	if _, err := os.Stat("/bin/ls"); err == nil {
		if err := checkStaticAMD64("/bin/ls"); err == nil {
			t.Error("/bin/ls (dynamic): no error")
		}
	}
}
