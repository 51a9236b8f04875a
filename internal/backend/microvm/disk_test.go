//go:build linux

package microvm

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

const testChainID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// requireE2fsprogs skips unless the tools the code and the checks use exist.
func requireE2fsprogs(t *testing.T) {
	t.Helper()
	testutil.RequireLinux(t)
	for _, name := range []string{"mkfs.ext4", "debugfs", "dumpe2fs", "e2fsck"} {
		_, err := e2fsprog(name)
		testutil.Require(t, err == nil, "needs e2fsprogs: "+name+" not found")
	}
}

// e2fsTool runs an e2fsprogs binary and returns its stdout.
func e2fsTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	p, err := e2fsprog(name)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(p, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\n%s%s", name, args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// debugfsRequest runs one read-only debugfs request on img; it fails t on any
// error message, since debugfs exits 0 regardless.
func debugfsRequest(t *testing.T, img, request string) string {
	t.Helper()
	p, _ := e2fsprog("debugfs")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(p, "-R", request, img)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	for line := range strings.Lines(stderr.String()) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "debugfs 1.") {
			err = errors.Join(err, errors.New(line))
		}
	}
	if err != nil {
		t.Fatalf("debugfs -R %q: %v", request, err)
	}
	return stdout.String()
}

type imageInode struct {
	num, mode, uid, gid, links, size uint64
	typ, target, device              string
}

var debugfsStatRE = regexp.MustCompile(`Inode: (\d+)\s+Type: ([A-Za-z ]+?)\s+Mode:\s+(\d+)(?s:.*)User:\s+(\d+)\s+Group:\s+(\d+).*Size: (\d+)(?s:.*)Links: (\d+)`)

// statInImage reads the inode at path in img.
func statInImage(t *testing.T, img, path string) imageInode {
	t.Helper()
	out := debugfsRequest(t, img, "stat "+path)
	m := debugfsStatRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("stat %s: unexpected output:\n%s", path, out)
	}
	n := func(s string, base int) uint64 {
		v, err := strconv.ParseUint(s, base, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	in := imageInode{num: n(m[1], 10), typ: m[2], mode: n(m[3], 8), uid: n(m[4], 10), gid: n(m[5], 10), size: n(m[6], 10), links: n(m[7], 10)}
	if l := regexp.MustCompile(`Fast link dest: "(.*)"`).FindStringSubmatch(out); l != nil {
		in.target = l[1]
	}
	if d := regexp.MustCompile(`Device major/minor number: (\S+)`).FindStringSubmatch(out); d != nil {
		in.device = d[1]
	}
	return in
}

// testLowerDir builds <tmp>/layers/<testChainID>/fs with one of each kind
// of entry a layer holds. root tells whether the root-only ones (foreign
// owners, a whiteout) are there.
func testLowerDir(t *testing.T) (dir string, root bool) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "layers", testChainID, "fs")
	root = os.Geteuid() == 0
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	must(os.MkdirAll(dir, 0o755))
	must(os.Chmod(dir, 0o750))
	must(os.WriteFile(p("file"), []byte("hello\n"), 0o644))
	must(os.WriteFile(p("setuid"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Chmod(p("setuid"), os.ModeSetuid|0o755))
	must(os.WriteFile(p("big"), bytes.Repeat([]byte("0123456789abcdef"), 1<<16), 0o644))
	must(os.WriteFile(p("empty"), nil, 0o644))
	must(os.Link(p("file"), p("hardlink")))
	must(os.Symlink("file", p("symlink")))
	must(unix.Mkfifo(p("fifo"), 0o600))
	must(os.Mkdir(p("opaque"), 0o755))
	must(os.WriteFile(p("opaque/inner"), []byte("x"), 0o644))
	must(unix.Setxattr(p("opaque"), "user.overlay.opaque", []byte("y"), 0))
	must(os.MkdirAll(p("nested/deeper"), 0o755))
	must(os.Chmod(p("nested"), 0o700))
	if root {
		must(os.WriteFile(p("owned"), []byte("mine"), 0o600))
		must(os.Lchown(p("owned"), 1000, 1000))
		must(unix.Mknod(p("whiteout"), unix.S_IFCHR|0o644, 0))
		must(os.Lchown(dir, 1234, 5678))
	}
	return dir, root
}

func TestLayerDisk(t *testing.T) {
	requireE2fsprogs(t)
	lower, root := testLowerDir(t)
	cache := filepath.Join(t.TempDir(), "disks")

	img, err := layerDisk(t.Context(), cache, lower)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, testChainID+".ext4"); img != want {
		t.Fatalf("disk at %s, want %s", img, want)
	}
	e2fsTool(t, "e2fsck", "-fn", img)

	if got := debugfsRequest(t, img, "cat /file"); got != "hello\n" {
		t.Errorf("/file holds %q", got)
	}
	big, _ := os.ReadFile(filepath.Join(lower, "big"))
	if got := debugfsRequest(t, img, "cat /big"); got != string(big) {
		t.Errorf("/big differs (%d bytes, want %d)", len(got), len(big))
	}
	if got := debugfsRequest(t, img, "ea_get -V /opaque user.overlay.opaque"); got != "y\n" {
		t.Errorf("opaque xattr: %q", got)
	}

	check := func(path string, want imageInode) imageInode {
		t.Helper()
		got := statInImage(t, img, path)
		want.num = got.num
		if got != want {
			t.Errorf("%s: got %+v, want %+v", path, got, want)
		}
		return got
	}
	rootDir := imageInode{typ: "directory", mode: 0o750, links: 4, size: 4096}
	if root {
		rootDir.uid, rootDir.gid = 1234, 5678
	}
	check("/", rootDir)
	check("/setuid", imageInode{typ: "regular", mode: 0o4755, links: 1, size: 10})
	check("/empty", imageInode{typ: "regular", mode: 0o644, links: 1})
	file := check("/file", imageInode{typ: "regular", mode: 0o644, links: 2, size: 6})
	if link := check("/hardlink", imageInode{typ: "regular", mode: 0o644, links: 2, size: 6}); link.num != file.num {
		t.Errorf("hardlink is inode %d, file %d", link.num, file.num)
	}
	check("/symlink", imageInode{typ: "symlink", mode: 0o777, links: 1, size: 4, target: "file"})
	check("/fifo", imageInode{typ: "FIFO", mode: 0o600, links: 1})
	check("/nested", imageInode{typ: "directory", mode: 0o700, links: 3, size: 4096})
	if root {
		check("/owned", imageInode{typ: "regular", mode: 0o600, uid: 1000, gid: 1000, links: 1, size: 4})
		check("/whiteout", imageInode{typ: "character special", mode: 0o644, links: 1, device: "00:00"})
	} else {
		t.Log("not root: foreign owners and the whiteout unchecked")
	}
	if strings.Contains(debugfsRequest(t, img, "ls -p /"), "/lost+found/") {
		t.Error("the disk has a /lost+found the layer lacks")
	}

	var st unix.Stat_t
	if err := unix.Stat(img, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 >= st.Size {
		t.Errorf("disk not sparse: %d bytes allocated of %d", st.Blocks*512, st.Size)
	}
	if st.Mode&0o077 != 0 {
		t.Errorf("disk mode %o: others may read the layer's private files", st.Mode&0o777)
	}

	// Cached: the same file, not rebuilt.
	before, _ := os.Stat(img)
	time.Sleep(10 * time.Millisecond)
	again, err := layerDisk(t.Context(), cache, lower)
	if err != nil || again != img {
		t.Fatalf("second call: %q, %v", again, err)
	}
	after, _ := os.Stat(img)
	if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Error("second call rebuilt the disk")
	}
	assertDirHolds(t, cache, testChainID+".ext4", testChainID+".lock")
}

// assertDirHolds checks that dir holds exactly names.
func assertDirHolds(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

func TestLayerDiskBadInput(t *testing.T) {
	requireE2fsprogs(t)
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "disks")

	// A missing layer fails before anything is made.
	_, err := layerDisk(t.Context(), cache, filepath.Join(tmp, "layers", testChainID, "fs"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing layer: %v", err)
	}
	assertDirHolds(t, cache)

	for _, dir := range []string{
		"fs", "/fs", "/x/../fs", "/x/.hidden/fs", "/x/-rf/fs", "/x/a b/fs",
		"/x/a:b/fs", "/x/" + testChainID, "/x/" + testChainID + "/fs/sub", "/x/" + strings.Repeat("a", 201) + "/fs",
	} {
		if _, err := layerDisk(t.Context(), cache, dir); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("layerDisk(%q): %v, want invalid argument", dir, err)
		}
	}
	assertDirHolds(t, cache)
}

func TestLayerDiskMkfsFails(t *testing.T) {
	requireE2fsprogs(t)
	lower, _ := testLowerDir(t)
	cache := filepath.Join(t.TempDir(), "disks")
	// A mkfs.ext4 that writes half an image and fails, found first on PATH.
	bin := t.TempDir()
	script := `#!/bin/sh
eval "out=\${$(($# - 1))}"
echo partial >"$out"
echo 'mke2fs: warming up' >&2
echo ' mke2fs: out of luck ' >&2
exit 1
`
	if err := os.WriteFile(filepath.Join(bin, "mkfs.ext4"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))

	_, err := layerDisk(t.Context(), cache, lower)
	if err == nil || !strings.HasSuffix(err.Error(), ": mke2fs: out of luck") {
		t.Fatalf("got %v, want mkfs's last stderr line at the end", err)
	}
	assertDirHolds(t, cache, testChainID+".lock")
}

func TestLayerDiskConcurrent(t *testing.T) {
	requireE2fsprogs(t)
	lower, _ := testLowerDir(t)
	cache := filepath.Join(t.TempDir(), "disks")

	const n = 4
	var wg sync.WaitGroup
	paths, inos, errs := make([]string, n), make([]uint64, n), make([]error, n)
	for i := range n {
		wg.Go(func() {
			paths[i], errs[i] = layerDisk(t.Context(), cache, lower)
			// Stat at once: a later rebuild would replace the inode.
			if fi, err := os.Stat(paths[i]); err == nil {
				inos[i] = fi.Sys().(*syscall.Stat_t).Ino
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || paths[i] != paths[0] || inos[i] != inos[0] || inos[i] == 0 {
			t.Errorf("caller %d: %q inode %d, %v; caller 0: %q inode %d", i, paths[i], inos[i], errs[i], paths[0], inos[0])
		}
	}
	assertDirHolds(t, cache, testChainID+".ext4", testChainID+".lock")
}

func TestUpperDisk(t *testing.T) {
	requireE2fsprogs(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "upper.ext4")

	if err := upperDisk(t.Context(), path, 256); err != nil {
		t.Fatal(err)
	}
	head := e2fsTool(t, "dumpe2fs", "-h", path)
	features := regexp.MustCompile(`(?m)^Filesystem features:(.*)$`).FindStringSubmatch(head)
	if features == nil || strings.Contains(features[1], "has_journal") || !strings.Contains(features[1], "extent") {
		t.Errorf("features: %q", features)
	}
	for _, want := range []string{"Block size:               4096", "Block count:              65536", "Reserved block count:     0"} {
		if !strings.Contains(head, want) {
			t.Errorf("dumpe2fs -h lacks %q:\n%s", want, head)
		}
	}
	// The inode tables are marked zeroed, so the guest will not write them.
	if full := e2fsTool(t, "dumpe2fs", path); strings.Count(full, "ITABLE_ZEROED") == 0 {
		t.Error("inode tables not marked zeroed")
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 256<<20 || st.Blocks*512 > 16<<20 {
		t.Errorf("size %d, %d bytes allocated: want 256 MiB, sparse", st.Size, st.Blocks*512)
	}

	// An existing path is not touched.
	uuid := regexp.MustCompile(`Filesystem UUID:\s+(\S+)`).FindStringSubmatch(head)[1]
	if err := upperDisk(t.Context(), path, 128); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("existing path: %v", err)
	}
	if again := e2fsTool(t, "dumpe2fs", "-h", path); !strings.Contains(again, uuid) {
		t.Error("the existing disk was rewritten")
	}

	for _, size := range []int{-1, 0, 63, 1<<20 + 1} {
		bad := filepath.Join(dir, "bad.ext4")
		if err := upperDisk(t.Context(), bad, size); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("size %d: %v", size, err)
		}
		if _, err := os.Lstat(bad); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("size %d left %s behind", size, bad)
		}
	}
}

func TestPruneLayerDisks(t *testing.T) {
	requireE2fsprogs(t)
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "disks")
	if err := pruneLayerDisks(cache, nil); err != nil {
		t.Fatalf("missing cache: %v", err)
	}
	for _, key := range []string{"keep", "drop", "busy"} {
		lower := filepath.Join(tmp, "layers", key, "fs")
		if err := os.MkdirAll(lower, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := layerDisk(t.Context(), cache, lower); err != nil {
			t.Fatal(err)
		}
	}
	touch := func(name string, age time.Duration) {
		p := filepath.Join(cache, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		mtime := time.Now().Add(-age)
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	touch(".tmp-crashed.ext4-1", 2*time.Hour)
	touch(".tmp-building.ext4-2", time.Minute)
	touch("orphan.lock", 0)
	touch("notes.txt", 0)

	// A build of "busy" is under way.
	lock, err := lockKey(t.Context(), cache, "busy")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()

	if err := pruneLayerDisks(cache, func(key string) bool { return key == "keep" }); err != nil {
		t.Fatal(err)
	}
	assertDirHolds(t, cache, ".tmp-building.ext4-2", "busy.ext4", "busy.lock", "keep.ext4", "keep.lock", "notes.txt")
}

// The backend's PruneCache keeps the disks of layers the image store still
// has and drops the others.
func TestPruneCacheFollowsTheImageStore(t *testing.T) {
	root := t.TempDir()
	b := New(Options{Root: root})
	cache := b.layerCache()
	for _, key := range []string{"kept", "gone"} {
		if err := os.MkdirAll(cache, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cache, key+".ext4"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "images", "layers", "kept", "fs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := b.PruneCache(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cache, "kept.ext4")); err != nil {
		t.Errorf("the disk of a layer the store has: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "gone.ext4")); !os.IsNotExist(err) {
		t.Errorf("the disk of a pruned layer: %v", err)
	}
}

// PruneCache drops the templates made with files that are gone, and the
// initramfs images of earlier agents once they are a day old.
func TestPruneCacheDropsStaleTemplatesAndInitrds(t *testing.T) {
	root := t.TempDir()
	agent := filepath.Join(root, "agent")
	os.WriteFile(agent, []byte("agent"), 0o755)
	b := New(Options{Root: root, AgentPath: agent})
	os.MkdirAll(GuestDir(root), 0o755)
	os.WriteFile(b.guestFile(initrdName), []byte("base"), 0o644)
	current, err := b.initrd()
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(b.cacheDir(), "initrd-0123456789abcdef.img")
	os.WriteFile(old, nil, 0o644)
	recent := filepath.Join(b.cacheDir(), "initrd-fedcba9876543210.img")
	os.WriteFile(recent, nil, 0o644)
	dayAgo := time.Now().Add(-25 * time.Hour)
	os.Chtimes(old, dayAgo, dayAgo)

	template := func(key string, files ...string) string {
		dir := b.templateDir(key)
		os.MkdirAll(dir, 0o700)
		data, _ := json.Marshal(templateInfo{Files: files})
		os.WriteFile(filepath.Join(dir, templateMeta), data, 0o600)
		return dir
	}
	live := template("live", current)
	stale := template("stale", old)
	if err := b.PruneCache(t.Context()); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{current: true, recent: true, old: false, live: true, stale: false} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", p, err == nil, want)
		}
	}
}
