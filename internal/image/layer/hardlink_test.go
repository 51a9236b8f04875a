package layer

import (
	"archive/tar"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestApplyHardlinkCopyUp(t *testing.T) {
	priv := os.Geteuid() == 0
	lower := lowerOf(t,
		dir("bin/").with(func(h *tar.Header) { h.Mode = 0o751 }),
		reg("bin/busybox", "BUSYBOX").with(func(h *tar.Header) {
			h.Mode, h.ModTime, h.Uid = 0o755, t1, 7
			h.PAXRecords = map[string]string{"SCHILY.xattr.user.note": "bb"}
		}),
		sym("bin/sl", "busybox"),
	)
	dst, st := mustApply(t, Options{Privileged: priv}, []ent{
		hard("bin/sh", "bin/busybox"),
		hard("sl2", "/bin/sl"), // a link to a symlink links the symlink
	}, lower)
	content(t, dst+"/bin/busybox", "BUSYBOX")
	perm(t, dst+"/bin/busybox", 0o755)
	mtime(t, dst+"/bin/busybox", t1)
	perm(t, dst+"/bin", 0o751)
	if v, _ := xattrOf(dst+"/bin/busybox", "user.note"); v != "bb" {
		t.Errorf("xattr user.note = %q after copy-up", v)
	}
	a, b := lstat(t, dst+"/bin/busybox"), lstat(t, dst+"/bin/sh")
	if a.Ino != b.Ino {
		t.Error("bin/sh is not a link of the copied-up bin/busybox")
	}
	if priv && a.Uid != 7 {
		t.Errorf("copied-up owner %d, want 7", a.Uid)
	}
	fileType(t, dst+"/sl2", unix.S_IFLNK)
	if lstat(t, dst+"/sl2").Ino != lstat(t, dst+"/bin/sl").Ino {
		t.Error("sl2 is not a link of the copied-up symlink")
	}
	if st.Hardlinks != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestApplyHardlinkThroughLowerSymlink(t *testing.T) {
	lower := usrLib(t, "/usr/lib")
	dst, _ := mustApply(t, Options{}, []ent{hard("libc", "lib/libc.so")}, lower)
	content(t, dst+"/usr/lib/libc.so", "libc")
	if lstat(t, dst+"/usr/lib/libc.so").Ino != lstat(t, dst+"/libc").Ino {
		t.Error("not linked")
	}
}

func TestApplyHardlinkErrors(t *testing.T) {
	lower := lowerOf(t, dir("d/"))
	for name, es := range map[string][]ent{
		"missing":   {hard("x", "nope")},
		"directory": {hard("x", "d")},
		"self":      {reg("x", "1"), hard("x", "x")},
		"root":      {hard("x", "/")},
		"whiteout":  {reg("f", "1"), reg(".wh.g", ""), hard("x", "g")},
	} {
		if _, _, err := applyTar(t, Options{}, es, lower); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), "layer entry") {
			t.Errorf("%s: error without context: %v", name, err)
		}
	}
}
