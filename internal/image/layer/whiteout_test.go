package layer

import (
	"archive/tar"
	"errors"
	"testing"
)

func TestApplyWhiteouts(t *testing.T) {
	lower := lowerOf(t,
		reg("foo", "x"), dir("bar/"), reg("bar/f", "x"),
		dir("sub/").with(func(h *tar.Header) { h.Mode = 0o700; h.ModTime = t1 }), reg("sub/baz", "x"),
	)
	dst, st := mustApply(t, Options{}, []ent{
		reg(".wh.foo", ""), reg(".wh.bar", ""), reg("sub/.wh.baz", ""),
		reg(".wh.nothing", ""), // nothing below: harmless, as in docker
	}, lower)
	for _, p := range []string{"foo", "bar", "sub/baz", "nothing"} {
		isWhiteoutAt(t, dst+"/"+p)
	}
	absent(t, dst+"/.wh.foo") // the OCI marker itself is not written
	perm(t, dst+"/sub", 0o700)
	mtime(t, dst+"/sub", t1)
	if st.Whiteouts != 4 || st.Files != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestApplyWhiteoutKeepsOwnEntries(t *testing.T) {
	lower := lowerOf(t, reg("keep", "lower"), dir("d/"), reg("d/lower", "x"))
	dst, _ := mustApply(t, Options{}, []ent{
		reg("keep", "mine"), reg(".wh.keep", ""),
		dir("d/"), reg("d/mine", "m"), reg(".wh.d", ""),
		reg("late", "l"), reg(".wh.late", ""), reg(".wh.late", ""),
	}, lower)
	content(t, dst+"/keep", "mine")
	content(t, dst+"/d/mine", "m")
	opaqueAt(t, dst+"/d", true) // the lower d is gone, this layer's stays
	content(t, dst+"/late", "l")
}

func TestApplyWhiteoutThenEntry(t *testing.T) {
	lower := lowerOf(t, reg("a", "lower"), dir("b/"), reg("b/x", "x"))
	dst, _ := mustApply(t, Options{}, []ent{
		reg(".wh.a", ""), reg("a", "mine"),
		reg(".wh.b", ""), dir("b/"), reg("b/y", "y"),
	}, lower)
	content(t, dst+"/a", "mine")
	content(t, dst+"/b/y", "y")
	opaqueAt(t, dst+"/b", true)
}

func TestApplyOpaque(t *testing.T) {
	lower := lowerOf(t,
		dir("etc/"), reg("etc/old", "x"),
		dir("opt/").with(func(h *tar.Header) { h.Mode = 0o750; h.ModTime = t1 }), reg("opt/old", "x"),
	)
	dst, st := mustApply(t, Options{}, []ent{
		dir("etc/"), reg("etc/.wh..wh..opq", ""), reg("etc/new", "n"),
		reg("opt/.wh..wh..opq", ""), // opt only in the lower: created like it
		reg("fresh/.wh..wh..opq", ""),
		reg(".wh..wh.plnk", ""), reg("etc/.wh..wh.aufs", ""), // aufs bookkeeping
	}, lower)
	opaqueAt(t, dst+"/etc", true)
	content(t, dst+"/etc/new", "n")
	absent(t, dst+"/etc/old")
	opaqueAt(t, dst+"/opt", true)
	perm(t, dst+"/opt", 0o750)
	mtime(t, dst+"/opt", t1)
	opaqueAt(t, dst+"/fresh", true)
	absent(t, dst+"/.wh..wh.plnk")
	absent(t, dst+"/etc/.wh..wh.aufs")
	if st.Whiteouts != 3 || st.SkippedTotal != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestApplyBadWhiteoutNames(t *testing.T) {
	for _, name := range []string{"a/.wh...", "a/.wh..", ".wh."} {
		_, _, err := applyTar(t, Options{}, []ent{reg(name, "")})
		if !errors.Is(err, ErrUnsafe) {
			t.Errorf("%s: err %v, want ErrUnsafe", name, err)
		}
	}
}
