//go:build linux

package qemu

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

func requireQEMU(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("qemu-system-x86_64")
	testutil.Require(t, err == nil, "needs qemu-system-x86_64 (apt-get install qemu-system-x86)")
}

// firmwareOnly is a VM with no kernel, started paused: QEMU with its
// control socket and nothing to boot, enough to drive its life cycle.
func firmwareOnly(t *testing.T) Config {
	return Config{Dir: filepath.Join(t.TempDir(), "vm"), VCPUs: 1, MemoryMiB: 64, Accel: AccelTCG, Paused: true, AgentPort: "agentkernel"}
}

// startVM starts cfg's VM, killed and let go of when the test ends
// whatever happened in it.
func startVM(t *testing.T, cfg Config) *VM {
	t.Helper()
	vm, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Kill()
		vm.Close()
	})
	return vm
}

func TestArgsAskForOnlyWhatTheSandboxNeeds(t *testing.T) {
	dir := t.TempDir()
	kernel, initrd, disk := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd"), filepath.Join(dir, "root.img")
	for _, f := range []string{kernel, initrd, disk} {
		os.WriteFile(f, []byte("x"), 0o600)
	}
	cfg := Config{Dir: filepath.Join(dir, "vm"), Kernel: kernel, Initrd: initrd, Cmdline: "agentkernel.port=x",
		VCPUs: 2, MemoryMiB: 256, Accel: AccelTCG, Disks: []Disk{{Path: disk, ReadOnly: true, Serial: "ak-layer-0"}}, AgentPort: "agentkernel"}
	args, err := cfg.Args()
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-M microvm,accel=tcg", "-smp 2", "-m 256M", "-nodefaults", "-no-user-config",
		"-kernel " + kernel, "-initrd " + initrd, "panic=-1", "agentkernel.port=x",
		"file=" + disk + ",format=raw,readonly=on", "virtio-blk-device,drive=disk0,serial=ak-layer-0",
		"virtserialport,chardev=agent0,name=agentkernel.0", "virtserialport,chardev=agent3,name=agentkernel.3",
		"path=" + AgentSocket(cfg.Dir, 3) + ",server=on",
		"virtio-rng-device",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("command line lacks %q:\n%s", want, line)
		}
	}
	cfg.NIC = &NIC{File: os.Stdin, MAC: "52:54:00:00:00:01"}
	args, err = cfg.Args()
	if err != nil {
		t.Fatal(err)
	}
	line = strings.Join(args, " ")
	for _, want := range []string{"dgram,id=net0,local.type=fd,local.str=3", "virtio-net-device,netdev=net0,mac=52:54:00:00:00:01"} {
		if !strings.Contains(line, want) {
			t.Errorf("command line with a NIC lacks %q:\n%s", want, line)
		}
	}
	cfg.NIC = nil
	args, _ = cfg.Args()
	line = strings.Join(args, " ")
	// No network device unless asked for, no paused start unless asked.
	for _, unwanted := range []string{"-netdev", "-nic", "-S"} {
		if slices.Contains(args, unwanted) {
			t.Errorf("command line has %s:\n%s", unwanted, line)
		}
	}
}

func TestBadConfigsAreRefused(t *testing.T) {
	dir := t.TempDir()
	good := func() Config {
		return Config{Dir: filepath.Join(dir, "vm"), VCPUs: 1, MemoryMiB: 128, Accel: AccelTCG}
	}
	cases := map[string]func(*Config){
		"relative dir":        func(c *Config) { c.Dir = "vm" },
		"no vcpus":            func(c *Config) { c.VCPUs = 0 },
		"too many vcpus":      func(c *Config) { c.VCPUs = 1000 },
		"too little memory":   func(c *Config) { c.MemoryMiB = 16 },
		"unknown accelerator": func(c *Config) { c.Accel = "hvf" },
		"missing kernel":      func(c *Config) { c.Kernel = filepath.Join(dir, "nope") },
		"kernel is a dir":     func(c *Config) { c.Kernel = dir },
		"initrd, no kernel":   func(c *Config) { c.Initrd = "/etc/hostname" },
		"missing disk":        func(c *Config) { c.Disks = []Disk{{Path: filepath.Join(dir, "nope")}} },
		"comma in disk path":  func(c *Config) { c.Disks = []Disk{{Path: "/etc/host,name"}} },
		"comma in disk serial": func(c *Config) {
			c.Disks = []Disk{{Path: "/etc/hostname", Serial: "a,b"}}
		},
		"bad port name":  func(c *Config) { c.AgentPort = "a,b" },
		"too many ports": func(c *Config) { c.AgentPort, c.AgentPorts = "a", 31 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := good()
			mutate(&cfg)
			_, err := Start(context.Background(), cfg)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Start: %v, want an invalid-argument error", err)
			}
			if _, serr := os.Stat(cfg.Dir); serr == nil {
				t.Errorf("a refused config left %s behind", cfg.Dir)
			}
		})
	}
}

func TestLifeCycle(t *testing.T) {
	requireQEMU(t)
	before := testutil.Snapshot()
	t.Cleanup(func() { testutil.CheckNoLeaks(t, before) })
	ctx := context.Background()
	cfg := firmwareOnly(t)
	vm := startVM(t, cfg)
	if st, err := vm.Status(ctx); err != nil || st != "prelaunch" {
		t.Fatalf("status of a paused VM: %q, %v", st, err)
	}
	for i := range defaultAgentPorts {
		if _, err := os.Stat(AgentSocket(cfg.Dir, i)); err != nil {
			t.Errorf("agent socket: %v", err)
		}
	}
	if _, err := Start(ctx, cfg); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second Start in the same directory: %v, want already exists", err)
	}

	// Another process finds it through its directory alone.
	other, err := Open(ctx, cfg.Dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if st, err := other.Status(ctx); err != nil || st != "prelaunch" {
		t.Errorf("status through Open: %q, %v", st, err)
	}
	if err := Remove(cfg.Dir); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Remove of a running VM: %v, want refused", err)
	}

	if err := other.Quit(ctx); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	for _, h := range []*VM{vm, other} {
		select {
		case <-h.Exited():
		case <-time.After(5 * time.Second):
			t.Fatal("Exited not closed after Quit")
		}
	}
	other.Close()
	if Alive(cfg.Dir) {
		t.Error("Alive after Quit")
	}
	if _, err := Open(ctx, cfg.Dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Open after Quit: %v, want ErrNotRunning", err)
	}
	if err := Remove(cfg.Dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Remove left %s", cfg.Dir)
	}
}

// Each agent port carries one client: a free one is taken, a client
// waits while all are taken, and a port comes back when its connection
// closes. (With no guest here, nothing answers the session's sync: the
// ports are taken without it.)
func TestAgentPortsAreTakenOneClientEach(t *testing.T) {
	requireQEMU(t)
	cfg := firmwareOnly(t)
	cfg.AgentPorts = 2
	startVM(t, cfg)
	ctx := context.Background()
	a, err := takePort(ctx, cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := takePort(ctx, cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.RemoteAddr().String() == b.RemoteAddr().String() {
		t.Fatalf("two clients on one port: %s", a.RemoteAddr())
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if c, err := takePort(short, cfg.Dir); err == nil {
		c.Close()
		t.Fatal("a third client got a port of two")
	}
	a.Close()
	c, err := takePort(ctx, cfg.Dir)
	if err != nil {
		t.Fatalf("port not given back: %v", err)
	}
	if c.RemoteAddr().String() != a.RemoteAddr().String() {
		t.Errorf("got %s, want the freed %s", c.RemoteAddr(), a.RemoteAddr())
	}
	c.Close()
	b.Close()
}

// A QEMU killed from outside is seen as gone by every handle and by the
// directory, which then cleans up.
func TestKilledVMIsDetected(t *testing.T) {
	requireQEMU(t)
	before := testutil.Snapshot()
	t.Cleanup(func() { testutil.CheckNoLeaks(t, before) })
	ctx := context.Background()
	cfg := firmwareOnly(t)
	vm := startVM(t, cfg)
	other, err := Open(ctx, cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := exec.Command("kill", "-KILL", strconv.Itoa(vm.Pid())).Run(); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*VM{vm, other} {
		select {
		case <-h.Exited():
		case <-time.After(5 * time.Second):
			t.Fatal("a killed VM was not noticed")
		}
	}
	if _, err := other.Status(ctx); err == nil {
		t.Error("Status of a killed VM succeeded")
	}
	if Alive(cfg.Dir) {
		t.Error("Alive after kill")
	}
	if err := Remove(cfg.Dir); err != nil {
		t.Fatal(err)
	}
}

// QEMU refusing its command line gives its own reason, and nothing is
// left running or in the directory.
func TestStartFailureSaysWhyAndLeavesNothing(t *testing.T) {
	requireQEMU(t)
	before := testutil.Snapshot()
	t.Cleanup(func() { testutil.CheckNoLeaks(t, before) })
	cfg := firmwareOnly(t)
	cfg.MemoryMiB = 1 << 30 // 1 PiB: QEMU cannot allocate it
	_, err := Start(context.Background(), cfg)
	if err == nil {
		t.Fatal("Start of an impossible VM succeeded")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "QEMU") || strings.Count(err.Error(), "\n") > 0 {
		t.Errorf("error %q: want one line naming QEMU and its reason", err)
	}
	for _, f := range []string{qmpSocket, agentSocket, pidFile} {
		if _, serr := os.Stat(filepath.Join(cfg.Dir, f)); serr == nil {
			t.Errorf("%s left behind", f)
		}
	}
}

func TestCPUFlags(t *testing.T) {
	for in, want := range map[string]bool{
		"processor\t: 0\nflags\t\t: fpu vme vmx sse\n": true,
		"flags\t\t: fpu svm\n":                         true,
		"flags\t\t: fpu hypervisor sse\n":              false,
		"processor\t: 0\n":                             false,
	} {
		if got := hasHardwareVirt([]byte(in)); got != want {
			t.Errorf("hasHardwareVirt(%q) = %v, want %v", in, got, want)
		}
	}
	// Whatever this host is, the choice comes with its reason.
	if a, why := ChooseAccel(); why == "" || (a != AccelKVM && a != AccelTCG) {
		t.Errorf("ChooseAccel: %q, %q", a, why)
	}
}
