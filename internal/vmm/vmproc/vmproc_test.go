package vmproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// fakeEnv makes the test binary a fake VMM: it says hello on its output
// and waits to be killed.
const fakeEnv = "VMPROC_FAKE_VMM"

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" {
		fmt.Println("fake VMM up")
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fake is a VMM whose command line is the test binary, "--dir", dir.
var fake = &VMM{
	Name:         "fake",
	PidFile:      "fake.pid",
	LogFile:      "fake.log",
	RuntimeFiles: []string{"api.sock", "agent-*.sock"},
	Ours: func(dir string, args []string) bool {
		return len(args) == 3 && args[1] == "--dir" && args[2] == dir
	},
}

func fakeCmd(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "--dir", dir)
	cmd.Env = append(os.Environ(), fakeEnv+"=1")
	return cmd
}

func exitedWithin(t *testing.T, p *Process) {
	t.Helper()
	select {
	case <-p.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("Exited not closed")
	}
}

// A VMM killed from outside is noticed by every handle, and its directory
// can then be removed.
func TestProcessAcrossHandles(t *testing.T) {
	before := testutil.Snapshot()
	t.Cleanup(func() { testutil.CheckNoLeaks(t, before) })
	dir := filepath.Join(t.TempDir(), "vm")
	os.MkdirAll(dir, 0o700)
	for _, f := range []string{"api.sock", "agent-0.sock", "disk.img"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o600)
	}
	p, err := fake.Start(dir, fakeCmd(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		p.Close()
	})
	for f, want := range map[string]bool{"api.sock": false, "agent-0.sock": false, "disk.img": true, "fake.pid": true} {
		if _, err := os.Stat(filepath.Join(dir, f)); (err == nil) != want {
			t.Errorf("%s there: %v, want %v", f, err == nil, want)
		}
	}
	if _, err := fake.Start(dir, fakeCmd(t, dir)); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second Start: %v, want already exists", err)
	}
	other, err := fake.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.Pid() != p.Pid() || !fake.Alive(dir) {
		t.Fatalf("Open: pid %d, want %d; Alive %v", other.Pid(), p.Pid(), fake.Alive(dir))
	}
	if err := fake.Remove(dir); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Remove of a running VMM: %v, want refused", err)
	}
	for deadline := time.Now().Add(5 * time.Second); fake.LogTail(dir) != ": fake VMM up"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("log tail %q", fake.LogTail(dir))
		}
	}

	if err := exec.Command("kill", "-KILL", fmt.Sprint(p.Pid())).Run(); err != nil {
		t.Fatal(err)
	}
	exitedWithin(t, p)
	exitedWithin(t, other)
	if fake.Alive(dir) {
		t.Error("Alive after kill")
	}
	if _, err := fake.Open(dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Open after kill: %v, want ErrNotRunning", err)
	}
	if err := p.Kill(); err != nil {
		t.Errorf("Kill of a dead VMM: %v", err)
	}
	if err := fake.Remove(dir); err != nil {
		t.Fatal(err)
	}
}

func TestKillThroughAnotherHandle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vm")
	p, err := fake.Start(dir, fakeCmd(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	other, err := fake.Open(dir)
	if err != nil {
		p.Kill()
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Kill(); err != nil {
		t.Fatal(err)
	}
	exitedWithin(t, p)
}

// A pid file naming a process that is not dir's VMM (pids are reused) is
// no VMM, and a missing one is none either.
func TestPidOfAnotherProcessIsNotTheVMM(t *testing.T) {
	dir := t.TempDir()
	if _, err := fake.Open(dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Open without a pid file: %v, want ErrNotRunning", err)
	}
	os.WriteFile(filepath.Join(dir, fake.PidFile), []byte(fmt.Sprint(os.Getpid())), 0o600)
	if fake.Alive(dir) {
		t.Error("Alive with the pid of the test itself")
	}
	if _, err := fake.Open(dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Open: %v, want ErrNotRunning", err)
	}
	os.WriteFile(filepath.Join(dir, fake.PidFile), []byte("x"), 0o600)
	if _, err := fake.Open(dir); err == nil || errors.Is(err, ErrNotRunning) {
		t.Errorf("Open with a garbled pid file: %v, want it said", err)
	}
}

func TestStartFailureLeavesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vm")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "api.sock"), nil, 0o600)
	_, err := fake.Start(dir, exec.Command(filepath.Join(dir, "no-vmm")))
	if err == nil || !strings.HasPrefix(err.Error(), "starting fake: ") {
		t.Fatalf("Start of a missing binary: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != fake.LogFile {
			t.Errorf("%s left behind", e.Name())
		}
	}
}
