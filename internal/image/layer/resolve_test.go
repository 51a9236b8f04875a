package layer

import (
	"archive/tar"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// usrLib is a lower layer with /lib a symlink into /usr, as merged-/usr
// distributions have it.
func usrLib(t *testing.T, target string) string {
	return lowerOf(t,
		dir("usr/").with(func(h *tar.Header) { h.Mode = 0o751; h.ModTime = t1; h.Uid = 42 }),
		dir("usr/lib/").with(func(h *tar.Header) { h.Mode = 0o711; h.ModTime = t1; h.Gid = 43 }),
		reg("usr/lib/libc.so", "libc"),
		sym("lib", target),
	)
}

func TestApplyThroughLowerSymlink(t *testing.T) {
	for _, target := range []string{"usr/lib", "/usr/lib", "./usr/../usr/lib/", "/../../usr/lib"} {
		t.Run(target, func(t *testing.T) {
			lower := usrLib(t, target)
			dst, _ := mustApply(t, Options{Privileged: os.Geteuid() == 0}, []ent{reg("lib/foo", "foo")}, lower)
			content(t, dst+"/usr/lib/foo", "foo")
			absent(t, dst+"/lib")
			absent(t, dst+"/usr/lib/libc.so") // still only in the lower
			// the parents dst had to create look as they do in the lower
			perm(t, dst+"/usr", 0o751)
			perm(t, dst+"/usr/lib", 0o711)
			mtime(t, dst+"/usr", t1)
			mtime(t, dst+"/usr/lib", t1)
			if os.Geteuid() == 0 {
				if st := lstat(t, dst+"/usr"); st.Uid != 42 {
					t.Errorf("usr uid %d, want 42", st.Uid)
				}
				if st := lstat(t, dst+"/usr/lib"); st.Gid != 43 {
					t.Errorf("usr/lib gid %d, want 43", st.Gid)
				}
			}
		})
	}
}

func TestApplyThroughOwnSymlink(t *testing.T) {
	// The layer's own symlink leads later entries the same way.
	dst, _ := mustApply(t, Options{}, []ent{sym("lib", "usr/lib"), reg("lib/x", "x")})
	content(t, dst+"/usr/lib/x", "x")
	fileType(t, dst+"/lib", unix.S_IFLNK)
}

func TestApplyMissingParents(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	dst, _ := mustApply(t, Options{}, []ent{reg("a/b/c/f", "x")})
	for _, d := range []string{"a", "a/b", "a/b/c"} {
		fileType(t, dst+"/"+d, unix.S_IFDIR)
		perm(t, dst+"/"+d, 0o755)
	}
	content(t, dst+"/a/b/c/f", "x")
}

func TestApplyDotDotClampsAtRoot(t *testing.T) {
	lower := lowerOf(t, dir("a/b/"), sym("a/b/up", "../../../../../usr"))
	dst, _ := mustApply(t, Options{}, []ent{reg("a/b/up/x", "x")}, lower)
	content(t, dst+"/usr/x", "x")
}

func TestApplySymlinkLoop(t *testing.T) {
	lower := lowerOf(t, sym("l1", "l2"), sym("l2", "/l1"))
	_, _, err := applyTar(t, Options{}, []ent{reg("l1/x", "x")}, lower)
	if err == nil || !strings.Contains(err.Error(), "too many levels of symbolic links") {
		t.Errorf("err %v, want a symlink loop error", err)
	}
	_, _, err = applyTar(t, Options{}, []ent{sym("self", "self"), reg("self/x", "x")})
	if err == nil {
		t.Error("self loop accepted")
	}
}

func TestApplyThroughFileFails(t *testing.T) {
	lower := lowerOf(t, reg("f", "x"))
	if _, _, err := applyTar(t, Options{}, []ent{reg("f/x", "x")}, lower); err == nil {
		t.Error("entry under a lower regular file accepted")
	}
}

func TestApplyLowerWhiteoutAndOpaqueHide(t *testing.T) {
	bottom := lowerOf(t,
		sym("lib", "usr/lib"),
		dir("d/"), sym("d/sub", "/elsewhere"),
	)
	middle := lowerOf(t,
		reg(".wh.lib", ""),
		dir("d/"), reg("d/.wh..wh..opq", ""),
	)
	dst, _ := mustApply(t, Options{}, []ent{reg("lib/x", "x"), reg("d/sub/y", "y")}, middle, bottom)
	// lib is whited out in middle: bottom's symlink is not followed
	content(t, dst+"/lib/x", "x")
	absent(t, dst+"/usr")
	// d is opaque in middle: bottom's d/sub is not there
	content(t, dst+"/d/sub/y", "y")
	absent(t, dst+"/elsewhere")
	// copying d up must not copy its opacity: this layer merges with middle's d
	opaqueAt(t, dst+"/d", false)
}

func TestApplyOwnWhiteoutThenDirectory(t *testing.T) {
	lower := usrLib(t, "usr/lib")
	for name, es := range map[string][]ent{
		"implicit": {reg(".wh.usr", ""), reg("usr/new", "n")},
		"explicit": {reg(".wh.usr", ""), dir("usr/"), reg("usr/new", "n")},
	} {
		t.Run(name, func(t *testing.T) {
			dst, _ := mustApply(t, Options{}, es, lower)
			content(t, dst+"/usr/new", "n")
			// usr was whited out by this layer: the recreated usr hides the lower one
			opaqueAt(t, dst+"/usr", true)
		})
	}
}
