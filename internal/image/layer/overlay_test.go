package layer

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestApplyOverlayMount mounts applied layers the way the native backend
// does (overlayfs, userxattr) and checks the merged view the kernel shows.
func TestApplyOverlayMount(t *testing.T) {
	testutil.RequireRoot(t)
	base := lowerOf(t,
		dir("usr/"), dir("usr/lib/"), reg("usr/lib/libc.so", "libc"), sym("lib", "usr/lib"),
		dir("etc/"), reg("etc/a", "a"), reg("etc/b", "b"),
		dir("opt/"), reg("opt/old", "o"),
		dir("var/"), reg("var/gone", "g"),
		dir("bin/"), reg("bin/busybox", "bb").with(func(h *tar.Header) { h.Mode = 0o755 }),
	)
	top, _ := mustApply(t, Options{Privileged: true}, []ent{
		reg("lib/new.so", "new"),
		reg("etc/.wh.a", ""),
		reg("opt/.wh..wh..opq", ""), reg("opt/only", "1"),
		reg(".wh.var", ""), dir("var/"), reg("var/fresh", "f"),
		hard("bin/sh", "bin/busybox"),
	}, base)

	mnt := t.TempDir()
	opts := "ro,userxattr,lowerdir=" + top + ":" + base
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		testutil.Require(t, false, "overlayfs with userxattr: "+err.Error())
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })

	names := func(d string) string {
		ents, err := os.ReadDir(filepath.Join(mnt, d))
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, e := range ents {
			s = append(s, e.Name())
		}
		return strings.Join(s, " ")
	}
	for d, want := range map[string]string{
		"":        "bin etc lib opt usr var",
		"usr/lib": "libc.so new.so",
		"etc":     "b",
		"opt":     "only",
		"var":     "fresh",
		"bin":     "busybox sh",
	} {
		if got := names(d); got != want {
			t.Errorf("merged /%s: %q, want %q", d, got, want)
		}
	}
	content(t, mnt+"/lib/new.so", "new")
	content(t, mnt+"/bin/sh", "bb")
	fileType(t, mnt+"/lib", unix.S_IFLNK)
}
