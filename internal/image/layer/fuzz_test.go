package layer

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuzzSeeds are the test suite's archives, plus the escape attempts the
// fuzzer should start from.
var fuzzSeeds = [][]ent{
	{dir("etc/"), reg("etc/passwd", "root"), sym("etc/l", "passwd"), hard("etc/h", "etc/passwd"), fifo("etc/p")},
	{reg("../../outside/x", "x"), reg("a/../../x", "x"), hard("h", "../../outside/x")},
	{reg("abs/x", "x"), reg("rel/x", "x"), reg("root/tmp/x", "x"), dir("abs/d/"), reg("abs/.wh.x", "")},
	{sym("s", "../../../outside"), reg("s/x", "x"), dir("s/d/"), hard("s/h", "s/x"), sym("t", "/"), hard("u", "t/etc/passwd")},
	{reg(".wh.abs", ""), reg("abs/x", "x"), reg("d/.wh..wh..opq", ""), reg("d/x", "x"), reg(".wh..wh.plnk", "")},
	{hard("h", "abs/../lower/f"), hard("h2", "f"), hard("h3", "abs"), hard("d/h4", "d/f")},
	{dev("null", tar.TypeChar, 1, 3), dev("wh", tar.TypeChar, 0, 0), reg("big", strings.Repeat("z", 300))},
	{dir("a/"), reg("a", "x"), dir("a/"), sym("a/b", "/a"), reg("a/b/c", "x"), sym("l1", "l2"), sym("l2", "l1"), reg("l1/x", "")},
	{withXattrs(reg("x", "x")), withXattrs(dir("d/")), reg(".wh.d", ""), dir("d/")},
	{dir("./"), reg("a/b/c/d", "x"), reg("a", "y"), reg(".wh.f", ""), reg("f", "z")},
}

// FuzzApply: whatever the layer, Apply never panics and never creates
// anything outside dst — neither in a sibling directory that symlinks in the
// lower layer point at, nor in the lower layer itself.
//
// The input is a script of entries (see fuzzTar), not raw tar bytes: tar
// headers carry checksums, so mutated raw archives almost never get past
// archive/tar to the code under test, and their size makes minimization
// crawl. Malformed and truncated archives come in through "cut".
func FuzzApply(f *testing.F) {
	for _, es := range fuzzSeeds {
		f.Add(script(es...))
	}
	privileged := os.Geteuid() == 0
	f.Fuzz(func(t *testing.T, s string) {
		data := fuzzTar(s)
		root := t.TempDir()
		outside := filepath.Join(root, "outside")
		lower := filepath.Join(root, "lower")
		dst := filepath.Join(root, "dst")
		for _, d := range []string{outside, lower, dst, lower + "/d"} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		os.WriteFile(lower+"/f", []byte("lower"), 0o644)
		os.WriteFile(lower+"/d/f", []byte("lower"), 0o644)
		os.Symlink(outside, lower+"/abs")
		os.Symlink("../../../../../../../../../../"+strings.TrimPrefix(outside, "/"), lower+"/rel")
		os.Symlink("/", lower+"/root")
		before := tree(lower)

		Apply(t.Context(), bytes.NewReader(data), dst, []string{lower}, Options{Privileged: privileged})

		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Errorf("written outside dst: %v", ents)
		}
		if ents, _ := os.ReadDir(root); len(ents) != 3 {
			t.Errorf("written next to dst: %v", ents)
		}
		if after := tree(lower); after != before {
			t.Errorf("lower layer changed:\n%s\nnow:\n%s", before, after)
		}
	})
}

// script encodes entries one per line: "TYPE NAME ARG", where TYPE is the
// tar type flag, ARG the body, link target or "major:minor", and a line
// "x NAME=VALUE" adds an xattr to the entry before it.
func script(es ...ent) string {
	var b strings.Builder
	for _, e := range es {
		arg := e.body
		switch e.Typeflag {
		case tar.TypeSymlink, tar.TypeLink:
			arg = e.Linkname
		case tar.TypeChar, tar.TypeBlock:
			arg = fmt.Sprintf("%d:%d", e.Devmajor, e.Devminor)
		}
		fmt.Fprintf(&b, "%c %s %s\n", e.Typeflag, e.Name, arg)
		for k, v := range e.PAXRecords {
			if name, ok := strings.CutPrefix(k, paxXattr); ok {
				fmt.Fprintf(&b, "x %s=%s\n", name, v)
			}
		}
	}
	return b.String()
}

// fuzzTar builds the archive a script describes; "cut N" truncates it to N
// bytes. Lines that make no sense are skipped.
func fuzzTar(s string) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	var pending *tar.Header
	var body string
	cut := -1
	flush := func() {
		if pending == nil {
			return
		}
		if pending.Typeflag == tar.TypeReg {
			pending.Size = int64(len(body))
		}
		if w.WriteHeader(pending) == nil {
			w.Write([]byte(body))
		}
		pending = nil
	}
	for _, line := range strings.Split(s, "\n") {
		typ, rest, _ := strings.Cut(line, " ")
		name, arg, _ := strings.Cut(rest, " ")
		if len(typ) != 1 {
			continue
		}
		switch typ[0] {
		case 'x':
			if k, v, ok := strings.Cut(rest, "="); ok && pending != nil {
				if pending.PAXRecords == nil {
					pending.PAXRecords = map[string]string{}
				}
				pending.PAXRecords[paxXattr+k] = v
			}
			continue
		case 'c':
			if n, err := strconv.Atoi(name); err == nil && name == rest {
				cut = n
				continue
			}
		}
		flush()
		h := &tar.Header{Typeflag: typ[0], Name: name, Mode: 0o755, ModTime: t0, Uid: 1000, Gid: 1000, Format: tar.FormatPAX}
		body = ""
		switch h.Typeflag {
		case tar.TypeReg:
			body = arg
		case tar.TypeSymlink, tar.TypeLink:
			h.Linkname = arg
		case tar.TypeChar, tar.TypeBlock:
			ma, mi, _ := strings.Cut(arg, ":")
			h.Devmajor, _ = strconv.ParseInt(ma, 10, 32)
			h.Devminor, _ = strconv.ParseInt(mi, 10, 32)
		case tar.TypeDir, tar.TypeFifo:
		default:
			continue
		}
		pending = h
	}
	flush()
	w.Close()
	data := b.Bytes()
	if cut >= 0 && cut < len(data) {
		data = data[:cut]
	}
	return data
}

// tree describes everything under dir.
func tree(dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		fmt.Fprintf(&b, "%s %v %d", p, fi.Mode(), fi.Size())
		if fi.Mode()&os.ModeSymlink != 0 {
			t, _ := os.Readlink(p)
			b.WriteString(" -> " + t)
		}
		b.WriteByte('\n')
		return nil
	})
	return b.String()
}

// TestFuzzScript keeps the fuzz encoding honest: a seed decodes to the
// archive it was made from.
func TestFuzzScript(t *testing.T) {
	es := fuzzSeeds[0]
	got := tar.NewReader(bytes.NewReader(fuzzTar(script(es...))))
	for _, e := range es {
		h, err := got.Next()
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != e.Name || h.Typeflag != e.Typeflag || h.Linkname != e.Linkname || h.Size != int64(len(e.body)) {
			t.Errorf("decoded %+v, want %+v", h, e.Header)
		}
	}
}
