package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestApplyTypesModesTimes(t *testing.T) {
	dst, st := mustApply(t, Options{}, []ent{
		dir("etc/").with(func(h *tar.Header) { h.Mode = 0o750; h.ModTime = t1 }),
		reg("etc/passwd", "root:x:0:0\n").with(func(h *tar.Header) { h.Mode = 0o640; h.ModTime = t1 }),
		sym("etc/link", "passwd"),
		hard("etc/hard", "etc/passwd"),
		fifo("etc/fifo"),
		reg("etc/empty", ""),
		dir("etc/sub/").with(func(h *tar.Header) { h.Mode = 0o500 }), // read-only, filled after
		reg("etc/sub/f", "x"),
	})
	e := filepath.Join(dst, "etc")
	fileType(t, e, unix.S_IFDIR)
	perm(t, e, 0o750)
	mtime(t, e, t1) // set after its entries were written
	content(t, e+"/passwd", "root:x:0:0\n")
	perm(t, e+"/passwd", 0o640)
	mtime(t, e+"/passwd", t1)
	if l, err := os.Readlink(e + "/link"); err != nil || l != "passwd" {
		t.Errorf("link -> %q, %v", l, err)
	}
	mtime(t, e+"/link", t0)
	if a, b := lstat(t, e+"/passwd"), lstat(t, e+"/hard"); a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hard link: inodes %d, %d, nlink %d", a.Ino, b.Ino, a.Nlink)
	}
	fileType(t, e+"/fifo", unix.S_IFIFO)
	perm(t, e+"/fifo", 0o600)
	content(t, e+"/empty", "")
	perm(t, e+"/sub", 0o500)
	mtime(t, e+"/sub", t0)
	content(t, e+"/sub/f", "x")
	want := Stats{Files: 4, Dirs: 2, Symlinks: 1, Hardlinks: 1, Bytes: int64(len("root:x:0:0\n") + 1)}
	if st.Files != want.Files || st.Dirs != want.Dirs || st.Symlinks != want.Symlinks ||
		st.Hardlinks != want.Hardlinks || st.Bytes != want.Bytes || st.SkippedTotal != 0 {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func TestApplyOwnershipPrivileged(t *testing.T) {
	testutil.RequireRoot(t)
	owned := func(h *tar.Header) { h.Uid, h.Gid = 1234, 5678 }
	dst, _ := mustApply(t, Options{Privileged: true}, []ent{
		dir("d/").with(owned),
		reg("d/f", "x").with(owned),
		sym("d/l", "/nonexistent").with(owned),
		fifo("d/p").with(owned),
	})
	for _, n := range []string{"d", "d/f", "d/l", "d/p"} {
		if st := lstat(t, filepath.Join(dst, n)); st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("%s owned by %d:%d, want 1234:5678", n, st.Uid, st.Gid)
		}
	}
}

func TestApplyUnprivileged(t *testing.T) {
	owned := func(h *tar.Header) { h.Uid, h.Gid = 1234, 5678 }
	dst, st := mustApply(t, Options{}, []ent{
		dir("d/").with(func(h *tar.Header) { owned(h); h.Mode = 0o2775 }),
		reg("d/suid", "x").with(func(h *tar.Header) { owned(h); h.Mode = 0o4755 }),
		reg("d/sgid", "x").with(func(h *tar.Header) { h.Mode = 0o2711 }),
		reg("d/sticky", "x").with(func(h *tar.Header) { h.Mode = 0o1644 }),
		dev("d/null", tar.TypeChar, 1, 3),
		dev("d/loop", tar.TypeBlock, 7, 0),
	})
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	if s := lstat(t, dst+"/d/suid"); s.Uid != uid || s.Gid != gid {
		t.Errorf("ownership restored unprivileged: %d:%d", s.Uid, s.Gid)
	}
	perm(t, dst+"/d", 0o775)
	perm(t, dst+"/d/suid", 0o755)
	perm(t, dst+"/d/sgid", 0o711)
	perm(t, dst+"/d/sticky", 0o1644)
	absent(t, dst+"/d/null")
	absent(t, dst+"/d/loop")
	if st.SkippedTotal != 2 || !strings.Contains(strings.Join(st.Skipped, "\n"), "d/null") {
		t.Errorf("skipped %q", st.Skipped)
	}
}

func TestApplyDevicesAndSetuidPrivileged(t *testing.T) {
	testutil.RequireRoot(t)
	dst, st := mustApply(t, Options{Privileged: true}, []ent{
		dev("dev/null", tar.TypeChar, 1, 3),
		dev("dev/loop0", tar.TypeBlock, 7, 0),
		dev("dev/wh", tar.TypeChar, 0, 0),
		reg("bin/su", "x").with(func(h *tar.Header) { h.Mode = 0o4755 }),
		reg("bin/wall", "x").with(func(h *tar.Header) { h.Mode = 0o2755; h.Gid = 5 }),
	})
	if s := lstat(t, dst+"/dev/null"); s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != unix.Mkdev(1, 3) || s.Mode&0o777 != 0o660 {
		t.Errorf("dev/null: mode %#o rdev %#x", s.Mode, s.Rdev)
	}
	if s := lstat(t, dst+"/dev/loop0"); s.Mode&unix.S_IFMT != unix.S_IFBLK || s.Rdev != unix.Mkdev(7, 0) {
		t.Errorf("dev/loop0: mode %#o rdev %#x", s.Mode, s.Rdev)
	}
	absent(t, dst+"/dev/wh")
	if st.SkippedTotal != 1 || !strings.Contains(st.Skipped[0], "whiteout") {
		t.Errorf("skipped %q", st.Skipped)
	}
	perm(t, dst+"/bin/su", 0o4755)
	perm(t, dst+"/bin/wall", 0o2755)
}

func TestApplyRootEntry(t *testing.T) {
	dst, _ := mustApply(t, Options{}, []ent{
		dir("./").with(func(h *tar.Header) { h.Mode = 0o711; h.ModTime = t1 }),
		reg("f", "x"),
	})
	perm(t, dst, 0o711)
	mtime(t, dst, t1)
	if _, _, err := applyTar(t, Options{}, []ent{reg(".", "")}); err == nil {
		t.Error("a file for the image root was accepted")
	}
}

func TestApplyReplace(t *testing.T) {
	host := t.TempDir()
	os.WriteFile(host+"/target", []byte("host"), 0o644)
	dst, _ := mustApply(t, Options{}, []ent{
		// dir over dir keeps the dir and its contents, updates metadata
		dir("keep/"), reg("keep/f", "1"), dir("keep/").with(func(h *tar.Header) { h.Mode = 0o700 }),
		// a non-dir over a dir removes it whole
		dir("gone/"), dir("gone/sub/"), reg("gone/sub/f", "1"), reg("gone", "file now"),
		// anything over a non-dir replaces it
		reg("f2s", "1"), sym("f2s", "elsewhere"),
		sym("s2d", "keep"), dir("s2d/"),
		reg("f2f", "old"), reg("f2f", "new"),
		// replacing a symlink to the host replaces the link, never writes through it
		sym("s2f", host+"/target"), reg("s2f", "mine"),
	})
	content(t, dst+"/keep/f", "1")
	perm(t, dst+"/keep", 0o700)
	content(t, dst+"/gone", "file now")
	fileType(t, dst+"/f2s", unix.S_IFLNK)
	fileType(t, dst+"/s2d", unix.S_IFDIR)
	content(t, dst+"/f2f", "new")
	content(t, dst+"/s2f", "mine")
	content(t, host+"/target", "host")
}

func TestApplyDstMustBeEmpty(t *testing.T) {
	dst := t.TempDir()
	os.WriteFile(dst+"/x", nil, 0o644)
	if _, err := Apply(t.Context(), bytes.NewReader(mkTar(t, reg("f", "x"))), dst, nil, Options{}); err == nil {
		t.Error("Apply into a non-empty directory succeeded")
	}
}

func TestApplyTruncated(t *testing.T) {
	full := mkTar(t, reg("a", strings.Repeat("x", 5000)), reg("b", "y"))
	for _, cut := range []int{100, 512 + 100, 512 + 4999, 512 + 5120 + 100} {
		dst := t.TempDir()
		_, err := Apply(t.Context(), bytes.NewReader(full[:cut]), dst, nil, Options{})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d: err %v, want unexpected EOF", cut, err)
		}
	}
	// A header that is not a header.
	junk := bytes.Repeat([]byte("junk"), 256)
	if _, err := Apply(t.Context(), bytes.NewReader(junk), t.TempDir(), nil, Options{}); err == nil {
		t.Error("malformed tar accepted")
	}
}

func TestApplyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dst := t.TempDir()
	_, err := Apply(ctx, bytes.NewReader(mkTar(t, reg("a", "x"))), dst, nil, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
	absent(t, dst+"/a")
}

func TestApplySkippedIsCapped(t *testing.T) {
	var es []ent
	for i := range maxSkipped + 10 {
		es = append(es, reg("f", "x").with(func(h *tar.Header) {
			h.Name = "f" + strings.Repeat("x", i)
			h.PAXRecords = map[string]string{"SCHILY.xattr.trusted.x": "1"}
		}))
	}
	_, st := mustApply(t, Options{}, es)
	if len(st.Skipped) != maxSkipped || st.SkippedTotal != maxSkipped+10 {
		t.Errorf("skipped %d listed of %d", len(st.Skipped), st.SkippedTotal)
	}
}

func TestHoleWriter(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := &holeWriter{f: f}
	zeros := make([]byte, 1<<20)
	w.Write([]byte("head"))
	for range 16 {
		w.Write(zeros)
	}
	w.Write([]byte("tail"))
	w.Write(zeros)
	f.Truncate(8 + 17<<20)
	got, _ := os.ReadFile(f.Name())
	want := slices.Concat([]byte("head"), bytes.Repeat(zeros, 16), []byte("tail"), zeros)
	if !bytes.Equal(got, want) {
		t.Fatalf("content differs (len %d, want %d)", len(got), len(want))
	}
	if st := lstat(t, f.Name()); st.Blocks*512 > 1<<20 {
		t.Errorf("%d bytes allocated: holes were written", st.Blocks*512)
	}
}
