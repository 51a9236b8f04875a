//go:build linux

package microvm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/backend/microvm"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image/imagetest"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// create makes a sandbox on m with cfg edited by edit.
func create(t testing.TB, m *service.Manager, name string, edit func(*sandbox.Config)) {
	t.Helper()
	cfg, _, err := sandbox.Resolve(sandbox.Options{NetworkUnavailable: errors.New("off")})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&cfg)
	}
	if _, err := m.Create(t.Context(), service.CreateRequest{Name: name, Backend: "microvm", Config: cfg}); err != nil {
		t.Fatal(err)
	}
}

func sh(t *testing.T, m *service.Manager, name, script string) string {
	t.Helper()
	var out, errb bytes.Buffer
	st, err := m.Exec(t.Context(), name, service.ExecRequest{Spec: agentv1.ExecSpec{Args: []string{"sh", "-c", script}}, Stdout: &out, Stderr: &errb})
	if err != nil || st.Code != 0 {
		t.Fatalf("%s: %v %+v %s", script, err, st, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// TestGuestIsItsOwnMachine: a sandbox runs its own kernel with the vCPUs
// and memory asked for, no network interface but lo with network off, and
// leaves nothing behind once removed.
func TestGuestIsItsOwnMachine(t *testing.T) {
	root := newRoot(t)
	before := testutil.Snapshot()
	m := newManager(t, root)
	create(t, m, "own", func(c *sandbox.Config) { c.VCPUs, c.MemoryMB = 2, 320 })
	info, err := m.Start(t.Context(), "own")
	if err != nil {
		t.Fatal(err)
	}
	var host unix.Utsname
	unix.Uname(&host)
	if got := sh(t, m, "own", "uname -r"); got == "" || got == unix.ByteSliceToString(host.Release[:]) {
		t.Errorf("guest kernel %q, host kernel %q", got, unix.ByteSliceToString(host.Release[:]))
	}
	if got := sh(t, m, "own", "nproc"); got != "2" {
		t.Errorf("nproc = %s, want 2", got)
	}
	kb, err := strconv.Atoi(sh(t, m, "own", "awk '/^MemTotal/ {print $2}' /proc/meminfo"))
	// The guest kernel keeps a little for itself (its image, page tables).
	if err != nil || kb > 320*1024 || kb < 272*1024 {
		t.Errorf("MemTotal = %d kB for a 320 MiB VM (%v)", kb, err)
	}
	if got := sh(t, m, "own", "ls /sys/class/net"); got != "lo" {
		t.Errorf("interfaces with network off: %q", got)
	}
	// The VM's files live in the sandbox's directory, and go with it.
	dir := filepath.Join(root, "sandboxes", info.Name)
	if _, err := os.Stat(filepath.Join(dir, "disk.ext4")); err != nil {
		t.Errorf("the sandbox's disk: %v", err)
	}
	if err := m.Remove(t.Context(), "own"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after remove: %v", dir, err)
	}
	testutil.CheckNoLeaks(t, before)
}

// TestStartRefusesWhatItCannotDo: a start that cannot work says why in
// one line and leaves the sandbox created, with no VM, disk or socket.
func TestStartRefusesWhatItCannotDo(t *testing.T) {
	root := newRoot(t)
	before := testutil.Snapshot()
	m := newManager(t, root)
	check := func(name string, kind error, want string) {
		t.Helper()
		_, err := m.Start(t.Context(), name)
		if err == nil || (kind != nil && !errors.Is(err, kind)) || !strings.Contains(err.Error(), want) {
			t.Errorf("start %s: %v, want %v containing %q", name, err, kind, want)
		}
		info, gerr := m.Get(t.Context(), name)
		if gerr != nil || info.Status != sandbox.StatusCreated {
			t.Errorf("%s after a failed start: %+v %v", name, info, gerr)
		}
		entries, _ := os.ReadDir(filepath.Join(root, "sandboxes", name))
		for _, e := range entries {
			if e.Name() == "vm" || e.Name() == "disk.ext4" {
				t.Errorf("%s: a failed start left %s", name, e.Name())
			}
		}
	}

	create(t, m, "mounts", func(c *sandbox.Config) {
		c.Mounts = []sandbox.Mount{{Source: t.TempDir(), Target: "/work"}}
	})
	check("mounts", errdefs.ErrNotImplemented, "not yet supported")

	// A guest whose kernel is not a kernel: QEMU's own reason comes back.
	bad := t.TempDir()
	badRoot := filepath.Join(bad, "root")
	guestDir := microvm.GuestDir(badRoot)
	os.MkdirAll(guestDir, 0o755)
	os.WriteFile(filepath.Join(guestDir, "vmlinuz"), []byte("not a kernel"), 0o644)
	data, err := os.ReadFile(filepath.Join(microvm.GuestDir(root), "initrd.img"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(guestDir, "initrd.img"), data, 0o644)
	mb := newManager(t, badRoot)
	create(t, mb, "badkernel", nil)
	_, err = mb.Start(t.Context(), "badkernel")
	if err == nil || !strings.Contains(err.Error(), "QEMU") || strings.Contains(err.Error(), "\n") {
		t.Errorf("start with a corrupt kernel: %v", err)
	}
	t.Logf("corrupt kernel: %v", err)

	// No guest at all: unavailable, and how to get one.
	os.RemoveAll(guestDir)
	cfg, _, _ := sandbox.Resolve(sandbox.Options{NetworkUnavailable: errors.New("off")})
	if _, err := mb.Create(t.Context(), service.CreateRequest{Name: "noguest", Backend: "microvm", Config: cfg}); !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "agentkernel setup") {
		t.Errorf("create without a guest: %v", err)
	}
	for _, mm := range []*service.Manager{m, mb} {
		list, _ := mm.List(context.Background())
		for _, in := range list {
			mm.Remove(context.Background(), in.Name)
		}
	}
	testutil.CheckNoLeaks(t, before)
}

// TestImageThatCannotBecomeADisk: an image whose layer is gone from the
// store fails to start with the image named, and leaves no disk behind;
// an image without files is refused.
func TestImageThatCannotBecomeADisk(t *testing.T) {
	root := newRoot(t)
	m := newManager(t, root)
	const ref = "microvm.test/broken:1"
	img := imagetest.Image(t, v1.Config{Env: []string{"PATH=/bin"}}, imagetest.BusyboxLayer(t, "broken"))
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "broken.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ImportImages(t.Context(), archive, ""); err != nil {
		t.Fatal(err)
	}
	layers, _ := filepath.Glob(filepath.Join(root, "images", "layers", "*", "fs"))
	if len(layers) != 1 {
		t.Fatalf("layers in the store: %v", layers)
	}
	// The layer becomes something mkfs cannot read.
	if err := os.RemoveAll(layers[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(layers[0], []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	create(t, m, "broken", func(c *sandbox.Config) { c.Image = ref })
	_, err = m.Start(t.Context(), "broken")
	if err == nil || !strings.Contains(err.Error(), ref) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("start: %v", err)
	}
	t.Logf("broken image: %v", err)
	if disks, _ := filepath.Glob(filepath.Join(root, "microvm", "cache", "layers", "*.ext4")); len(disks) != 0 {
		t.Errorf("layer disks after a failed build: %v", disks)
	}
	if err := m.Remove(t.Context(), "broken"); err != nil {
		t.Fatal(err)
	}

	// An image without a single file has nothing to boot.
	const emptyRef = "microvm.test/empty:1"
	tag, _ = name.NewTag(emptyRef)
	archive = filepath.Join(t.TempDir(), "empty.tar")
	if err := tarball.WriteToFile(archive, tag, imagetest.Image(t, v1.Config{})); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ImportImages(t.Context(), archive, ""); err != nil {
		t.Fatal(err)
	}
	create(t, m, "empty", func(c *sandbox.Config) { c.Image = emptyRef })
	if _, err := m.Start(t.Context(), "empty"); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "no files") {
		t.Errorf("start of an empty image: %v", err)
	}
	if err := m.Remove(t.Context(), "empty"); err != nil {
		t.Fatal(err)
	}
}

// TestFirstStartsRestoreTheTemplate: the first sandbox of a configuration
// boots and becomes its template; the next is restored from it, with its
// own host name, clock and random state, and a disk of its own.
func TestFirstStartsRestoreTheTemplate(t *testing.T) {
	root := newRoot(t)
	before := testutil.Snapshot()
	m := newManager(t, root)
	restored := func(name string) bool {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(root, "sandboxes", name, "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Runtime struct {
				Extra struct {
					Restored bool `json:"restored"`
				} `json:"extra"`
			} `json:"runtime"`
		}
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatal(err)
		}
		return rec.Runtime.Extra.Restored
	}
	random := map[string]string{}
	for _, name := range []string{"first", "second"} {
		create(t, m, name, nil)
		if _, err := m.Start(t.Context(), name); err != nil {
			t.Fatal(err)
		}
		if got := sh(t, m, name, "hostname"); got != name {
			t.Errorf("hostname of %s: %q", name, got)
		}
		secs, err := strconv.ParseInt(sh(t, m, name, "date +%s"), 10, 64)
		if err != nil || time.Since(time.Unix(secs, 0)).Abs() > 5*time.Second {
			t.Errorf("clock of %s: %d (%v)", name, secs, err)
		}
		random[name] = sh(t, m, name, "head -c 32 /dev/urandom | od -An -tx1; echo mine > /root/"+name)
	}
	if restored("first") || !restored("second") {
		t.Errorf("restored: first %v, second %v; want false, true", restored("first"), restored("second"))
	}
	if random["first"] == random["second"] {
		t.Errorf("both read the same random bytes %q", random["first"])
	}
	// The disks are the sandboxes' own.
	if got := sh(t, m, "second", "ls /root"); got != "second" {
		t.Errorf("/root of second: %q", got)
	}
	// A restart boots: the template is only for a sandbox's first start.
	if _, err := m.Stop(t.Context(), "second"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(t.Context(), "second"); err != nil {
		t.Fatal(err)
	}
	if restored("second") || sh(t, m, "second", "cat /root/second") != "mine" {
		t.Error("the restarted sandbox lost its disk or was restored")
	}
	for _, name := range []string{"first", "second"} {
		if err := m.Remove(t.Context(), name); err != nil {
			t.Fatal(err)
		}
	}
	testutil.CheckNoLeaks(t, before)
}
