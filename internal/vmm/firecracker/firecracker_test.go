//go:build linux

package firecracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" {
		os.Exit(fakeFirecracker(os.Args[1:]))
	}
	code := m.Run()
	if left := fakesRunning(""); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "fake firecrackers left running: %v\n", left)
		code = 1
	}
	os.Exit(code)
}

// fakesRunning lists the pids of fake Firecrackers serving dir's API
// socket, or any with dir "".
func fakesRunning(dir string) []string {
	self, _ := os.Executable()
	procs, _ := os.ReadDir("/proc")
	var pids []string
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		if len(args) == 3 && args[0] == self && args[1] == "--api-sock" && (dir == "" || args[2] == APISocket(dir)) {
			pids = append(pids, p.Name())
		}
	}
	return pids
}

// fakeConfig is a one-vCPU VM with a vsock device, run by the fake; the
// test fails if the fake is left running when it ends.
func fakeConfig(t *testing.T) Config {
	t.Helper()
	t.Setenv(fakeEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := Config{Binary: exe, Dir: filepath.Join(dir, "vm"), Kernel: writeFile(t, dir, "vmlinux", "\x7fELF\x02\x01\x01"), VCPUs: 1, MemoryMiB: 128, VsockCID: 3}
	t.Cleanup(func() {
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			left := fakesRunning(cfg.Dir)
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("fake firecracker left running: %v", left)
				return
			}
		}
	})
	return cfg
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startVM starts cfg's VM, killed and let go of when the test ends
// whatever happened in it.
func startVM(t *testing.T, cfg Config) *VM {
	t.Helper()
	vm, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Kill()
		vm.Close()
	})
	return vm
}

// requests is what the fake in dir was asked since it started, GETs
// left out (Start polls GET / until the API answers).
func requests(t *testing.T, dir string) []recorded {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, fakeRecord))
	if err != nil {
		t.Fatal(err)
	}
	var rs []recorded
	for line := range bytes.Lines(b) {
		var r recorded
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		if r.Method != http.MethodGet {
			rs = append(rs, r)
		}
	}
	return rs
}

// want is a request as the spec has it.
type want struct {
	method, path string
	body         map[string]any
}

// checkRequests compares got with want: the same requests in the same
// order, each body exactly the JSON object wanted and each accepted.
func checkRequests(t *testing.T, got []recorded, wants ...want) {
	t.Helper()
	if len(got) != len(wants) {
		var names []string
		for _, r := range got {
			names = append(names, r.Method+" "+r.Path)
		}
		t.Fatalf("%d requests %v, want %d", len(got), names, len(wants))
	}
	for i, w := range wants {
		g := got[i]
		if g.Method != w.method || g.Path != w.path {
			t.Errorf("request %d: %s %s, want %s %s", i, g.Method, g.Path, w.method, w.path)
			continue
		}
		var body, wantBody any
		json.Unmarshal(g.Body, &body)
		wb, _ := json.Marshal(w.body)
		json.Unmarshal(wb, &wantBody)
		if !reflect.DeepEqual(body, wantBody) {
			t.Errorf("%s %s: body %s, want %s", g.Method, g.Path, g.Body, wb)
		}
		if g.Status/100 != 2 {
			t.Errorf("%s %s: the fake answered %d", g.Method, g.Path, g.Status)
		}
	}
}

func TestStartSendsOneRequestPerPartInOrder(t *testing.T) {
	cfg := fakeConfig(t)
	files := t.TempDir()
	cfg.Initrd = writeFile(t, files, "initrd", "070701")
	cfg.Cmdline = "agentkernel.port=1024"
	cfg.VCPUs, cfg.MemoryMiB = 2, 256
	upper, layer := writeFile(t, files, "upper.ext4", ""), writeFile(t, files, "layer.ext4", "")
	cfg.Disks = []Disk{{Path: upper}, {Path: layer, ReadOnly: true, ID: "layer_0"}}
	cfg.NIC = &NIC{TapName: "aktap0", MAC: "06:00:ac:10:00:02"}
	vm := startVM(t, cfg)

	checkRequests(t, requests(t, cfg.Dir),
		want{"PUT", "/machine-config", map[string]any{"vcpu_count": 2, "mem_size_mib": 256}},
		want{"PUT", "/boot-source", map[string]any{
			"kernel_image_path": cfg.Kernel, "initrd_path": cfg.Initrd,
			"boot_args": bootArgs + " 8250.nr_uarts=0 agentkernel.port=1024",
		}},
		want{"PUT", "/drives/disk0", map[string]any{"drive_id": "disk0", "path_on_host": upper, "is_root_device": false, "is_read_only": false}},
		want{"PUT", "/drives/layer_0", map[string]any{"drive_id": "layer_0", "path_on_host": layer, "is_root_device": false, "is_read_only": true}},
		want{"PUT", "/network-interfaces/net0", map[string]any{"iface_id": "net0", "host_dev_name": "aktap0", "guest_mac": "06:00:ac:10:00:02"}},
		want{"PUT", "/vsock", map[string]any{"guest_cid": 3, "uds_path": VsockSocket(cfg.Dir)}},
		want{"PUT", "/actions", map[string]any{"action_type": "InstanceStart"}},
	)
	info, err := vm.Info(t.Context())
	if err != nil || info.State != StateRunning {
		t.Errorf("after Start: %+v, %v; want Running", info, err)
	}
}

// Only what the VM asks for is configured, and the console is asked for
// on the command line.
func TestStartOmitsWhatIsNotAskedFor(t *testing.T) {
	cfg := fakeConfig(t)
	cfg.VsockCID = 0
	cfg.Console = true
	startVM(t, cfg)
	checkRequests(t, requests(t, cfg.Dir),
		want{"PUT", "/machine-config", map[string]any{"vcpu_count": 1, "mem_size_mib": 128}},
		want{"PUT", "/boot-source", map[string]any{"kernel_image_path": cfg.Kernel, "boot_args": bootArgs + " console=ttyS0"}},
		want{"PUT", "/actions", map[string]any{"action_type": "InstanceStart"}},
	)
	if _, err := os.Stat(VsockSocket(cfg.Dir)); err == nil {
		t.Error("a vsock socket without a vsock device")
	}
}

func TestLifeCycleAcrossHandles(t *testing.T) {
	before := testutil.Snapshot()
	t.Cleanup(func() { testutil.CheckNoLeaks(t, before) })
	ctx := t.Context()
	cfg := fakeConfig(t)
	vm := startVM(t, cfg)
	if _, err := Start(ctx, cfg); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second Start in the same directory: %v, want already exists", err)
	}

	// Another process finds it through its directory alone.
	other, err := Open(ctx, cfg.Dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer other.Close()
	if other.Pid() != vm.Pid() {
		t.Errorf("Open found pid %d, Start started %d", other.Pid(), vm.Pid())
	}
	if info, err := other.Info(ctx); err != nil || info.State != StateRunning {
		t.Errorf("state through Open: %+v, %v", info, err)
	}
	if !Alive(cfg.Dir) {
		t.Error("not Alive while running")
	}
	if err := Remove(cfg.Dir); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Remove of a running VM: %v, want refused", err)
	}

	if err := other.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	for _, h := range []*VM{vm, other} {
		select {
		case <-h.Exited():
		case <-time.After(5 * time.Second):
			t.Fatal("Exited not closed after Kill")
		}
	}
	if Alive(cfg.Dir) {
		t.Error("Alive after Kill")
	}
	if _, err := vm.Info(ctx); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Info of a killed VM: %v, want ErrNotRunning", err)
	}
	if _, err := Open(ctx, cfg.Dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Open after Kill: %v, want ErrNotRunning", err)
	}
	if err := Remove(cfg.Dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Remove left %s", cfg.Dir)
	}
}

// A pid file naming a process that is not this directory's Firecracker
// (pids are reused) is no VM.
func TestPidOfAnotherProcessIsNotTheVM(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, pidFile, fmt.Sprint(os.Getpid()))
	if Alive(dir) {
		t.Error("Alive with the pid of the test itself")
	}
	if _, err := Open(t.Context(), dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Open: %v, want ErrNotRunning", err)
	}
}

func TestBadConfigsAreRefused(t *testing.T) {
	cfg := fakeConfig(t)
	files := t.TempDir()
	disk := writeFile(t, files, "disk", "")
	cases := map[string]func(*Config){
		"relative dir":       func(c *Config) { c.Dir = "vm" },
		"dir too long":       func(c *Config) { c.Dir = "/" + strings.Repeat("d", 100) },
		"no vcpus":           func(c *Config) { c.VCPUs = 0 },
		"too many vcpus":     func(c *Config) { c.VCPUs = 33 },
		"too little memory":  func(c *Config) { c.MemoryMiB = 32 },
		"no kernel":          func(c *Config) { c.Kernel = "" },
		"relative kernel":    func(c *Config) { c.Kernel = "vmlinux" },
		"missing kernel":     func(c *Config) { c.Kernel = filepath.Join(files, "nope") },
		"kernel is a dir":    func(c *Config) { c.Kernel = files },
		"missing initrd":     func(c *Config) { c.Initrd = filepath.Join(files, "nope") },
		"relative disk":      func(c *Config) { c.Disks = []Disk{{Path: "disk"}} },
		"missing disk":       func(c *Config) { c.Disks = []Disk{{Path: filepath.Join(files, "nope")}} },
		"bad disk id":        func(c *Config) { c.Disks = []Disk{{Path: disk, ID: "a-b"}} },
		"disk id twice":      func(c *Config) { c.Disks = []Disk{{Path: disk}, {Path: disk, ID: "disk0"}} },
		"no TAP name":        func(c *Config) { c.NIC = &NIC{} },
		"TAP name too long":  func(c *Config) { c.NIC = &NIC{TapName: strings.Repeat("t", 16)} },
		"bad MAC":            func(c *Config) { c.NIC = &NIC{TapName: "tap0", MAC: "06:00:ac:10:00"} },
		"reserved vsock CID": func(c *Config) { c.VsockCID = 2 },
		"wildcard vsock CID": func(c *Config) { c.VsockCID = ^uint32(0) },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := cfg
			mutate(&c)
			_, err := Start(t.Context(), c)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Start: %v, want an invalid-argument error", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
			if _, serr := os.Stat(c.Dir); serr == nil && filepath.IsAbs(c.Dir) {
				t.Errorf("a refused config left %s behind", c.Dir)
			}
		})
	}

	snap := writeFile(t, files, "snap", "")
	for name, args := range map[string][2]string{
		"relative snapshot":   {"snap", snap},
		"missing memory file": {snap, filepath.Join(files, "nope")},
	} {
		if _, err := Restore(t.Context(), cfg, args[0], args[1]); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Restore with a %s: %v, want an invalid-argument error", name, err)
		}
	}
	if _, err := os.Stat(cfg.Dir); err == nil {
		t.Errorf("a refused restore left %s behind", cfg.Dir)
	}

	c := cfg
	c.Binary = filepath.Join(files, "no-firecracker")
	if _, err := Start(t.Context(), c); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Start without the binary: %v, want unavailable", err)
	}
	if _, err := os.Stat(c.Dir); err == nil {
		t.Errorf("Start without the binary left %s behind", c.Dir)
	}
}

// Firecracker refusing a request gives its fault message as the error,
// and nothing is left running or in the directory.
func TestFaultMessageIsTheError(t *testing.T) {
	cfg := fakeConfig(t)
	cfg.Kernel = writeFile(t, t.TempDir(), "bzImage", "not a kernel")
	_, err := Start(t.Context(), cfg)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Path != "/actions" || apiErr.Status != http.StatusBadRequest {
		t.Fatalf("Start with a bad kernel: %v, want Firecracker's answer to InstanceStart", err)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "failed to load ELF kernel image") || !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("error %q: want the fault message, as a failed precondition", err)
	}
	checkNoRuntimeFiles(t, cfg.Dir)
}

// A Firecracker that exits at once says why in the error, in one line.
func TestFirecrackerThatDiesSaysWhy(t *testing.T) {
	cfg := fakeConfig(t)
	cfg.Binary = writeFile(t, t.TempDir(), "firecracker", "#!/bin/sh\necho starting\necho 'Error: KVM is not there' >&2\nexit 1\n")
	os.Chmod(cfg.Binary, 0o700)
	_, err := Start(t.Context(), cfg)
	if err == nil || !strings.Contains(err.Error(), "KVM is not there") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Start: %v, want one line with Firecracker's last word", err)
	}
	t.Log(err)
	checkNoRuntimeFiles(t, cfg.Dir)
}

func checkNoRuntimeFiles(t *testing.T, dir string) {
	t.Helper()
	for _, f := range []string{APISocket(dir), VsockSocket(dir), filepath.Join(dir, pidFile)} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s left behind", f)
		}
	}
	if Alive(dir) {
		t.Error("Alive after a failed start")
	}
}

func TestSnapshotAndRestore(t *testing.T) {
	ctx := t.Context()
	cfg := fakeConfig(t)
	cfg.Disks = []Disk{{Path: writeFile(t, t.TempDir(), "disk", "")}}
	vm := startVM(t, cfg)
	snaps := t.TempDir()
	snap, mem := filepath.Join(snaps, "vm.snap"), filepath.Join(snaps, "vm.mem")
	if err := vm.Snapshot(ctx, snap, mem); err != nil {
		t.Fatal(err)
	}
	got := requests(t, cfg.Dir)
	checkRequests(t, got[len(got)-2:],
		want{"PATCH", "/vm", map[string]any{"state": "Paused"}},
		want{"PUT", "/snapshot/create", map[string]any{"snapshot_type": "Full", "snapshot_path": snap, "mem_file_path": mem}},
	)
	if info, _ := vm.Info(ctx); info.State != StatePaused {
		t.Errorf("after Snapshot: %q, want the VM left paused", info.State)
	}
	// A paused VM is snapshotted as it is.
	if err := vm.Snapshot(ctx, snap, mem); err != nil {
		t.Fatal(err)
	}
	if got := requests(t, cfg.Dir); got[len(got)-2].Path != "/snapshot/create" {
		t.Errorf("a paused VM was paused again: %+v", got[len(got)-2:])
	}
	if err := vm.Kill(); err != nil {
		t.Fatal(err)
	}

	// Restored where it ran, its vsock socket (the snapshot's) is the
	// directory's again.
	restored, err := Restore(ctx, Config{Binary: cfg.Binary, Dir: cfg.Dir}, snap, mem)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		restored.Kill()
		restored.Close()
	})
	checkRequests(t, requests(t, cfg.Dir),
		want{"PUT", "/snapshot/load", map[string]any{
			"snapshot_path": snap,
			"mem_backend":   map[string]any{"backend_type": "File", "backend_path": mem},
			"resume_vm":     true,
		}},
	)
	if info, err := restored.Info(ctx); err != nil || info.State != StateRunning {
		t.Errorf("restored: %+v, %v; want Running", info, err)
	}
	c, err := DialAgent(ctx, cfg.Dir, echoPort)
	if err != nil {
		t.Fatalf("agent of the restored VM: %v", err)
	}
	c.Close()
}

// A snapshot that fails leaves the VM running, as it was found.
func TestFailedSnapshotResumes(t *testing.T) {
	ctx := t.Context()
	cfg := fakeConfig(t)
	vm := startVM(t, cfg)
	nowhere := filepath.Join(t.TempDir(), "no", "such", "dir")
	err := vm.Snapshot(ctx, filepath.Join(nowhere, "snap"), filepath.Join(nowhere, "mem"))
	if err == nil || !errors.As(err, new(*APIError)) {
		t.Fatalf("Snapshot into a missing directory: %v, want Firecracker's refusal", err)
	}
	got := requests(t, cfg.Dir)
	if n := len(got); n < 3 || got[n-3].Path != "/vm" || got[n-2].Path != "/snapshot/create" || got[n-2].Status != http.StatusBadRequest {
		t.Fatalf("requests %+v: want a pause, then a refused snapshot", got)
	}
	checkRequests(t, got[len(got)-1:], want{"PATCH", "/vm", map[string]any{"state": "Resumed"}})
	if info, _ := vm.Info(ctx); info.State != StateRunning {
		t.Errorf("after a failed snapshot: %q, want Running", info.State)
	}
	if err := vm.Snapshot(ctx, "vm.snap", "/tmp/vm.mem"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Snapshot to a relative path: %v, want invalid argument", err)
	}
}

func TestPauseAndResume(t *testing.T) {
	ctx := t.Context()
	vm := startVM(t, fakeConfig(t))
	for _, step := range []struct {
		do   func(context.Context) error
		want string
	}{{vm.Pause, StatePaused}, {vm.Resume, StateRunning}} {
		if err := step.do(ctx); err != nil {
			t.Fatal(err)
		}
		if info, err := vm.Info(ctx); err != nil || info.State != step.want {
			t.Errorf("state %+v, %v; want %s", info, err, step.want)
		}
	}
}

func TestDialAgent(t *testing.T) {
	ctx := t.Context()
	cfg := fakeConfig(t)
	startVM(t, cfg)

	c, err := DialAgent(ctx, cfg.Dir, echoPort)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// What the guest says right after the OK line is the caller's.
	greeting := make([]byte, len(fakeGreeting))
	if _, err := io.ReadFull(c, greeting); err != nil || string(greeting) != fakeGreeting {
		t.Fatalf("first bytes after the handshake: %q, %v; want %q", greeting, err, fakeGreeting)
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, 5)
	if _, err := io.ReadFull(c, echo); err != nil || string(echo) != "ping\n" {
		t.Errorf("echo: %q, %v", echo, err)
	}

	if _, err := DialAgent(ctx, cfg.Dir, 9); !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "garbage") {
		t.Errorf("a port that answers garbage: %v, want refused with the answer", err)
	}
	if _, err := DialAgent(ctx, cfg.Dir, 7); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("a port nothing listens on: %v, want unavailable", err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := DialAgent(short, cfg.Dir, 8); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a port that never answers: %v, want the deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("DialAgent outlived its context by %v", d)
	}
	if _, err := DialAgent(ctx, t.TempDir(), echoPort); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("a VM without vsock: %v, want failed precondition", err)
	}
}

func TestBootArgs(t *testing.T) {
	c := Config{Cmdline: "init=/agent"}
	if got, want := c.kernelCmdline(), bootArgs+" 8250.nr_uarts=0 init=/agent"; got != want {
		t.Errorf("without a console: %q, want %q", got, want)
	}
	c.Console = true
	if got := c.kernelCmdline(); !strings.Contains(got, "console=ttyS0") || strings.Contains(got, "nr_uarts") {
		t.Errorf("with a console: %q", got)
	}
}
