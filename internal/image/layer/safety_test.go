package layer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestApplyRejectsClimbing(t *testing.T) {
	for name, es := range map[string][]ent{
		"dotdot":          {reg("../../etc/x", "x")},
		"inner dotdot":    {reg("a/../../x", "x")},
		"bare dotdot":     {dir("../")},
		"absolute dotdot": {reg("/../x", "x")},
		"whiteout":        {reg("../.wh.x", "")},
		"hardlink name":   {reg("f", "x"), hard("../f", "f")},
		"hardlink target": {hard("f", "../../etc/passwd")},
		"hardlink inner":  {hard("f", "a/../../etc/passwd")},
	} {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			dst := filepath.Join(base, "a", "b", "layer") // room to climb into
			os.MkdirAll(dst, 0o755)
			_, err := Apply(t.Context(), strings.NewReader(string(mkTar(t, es...))), dst, nil, Options{Privileged: os.Geteuid() == 0})
			if !errors.Is(err, ErrUnsafe) {
				t.Errorf("err %v, want ErrUnsafe", err)
			}
			for _, d := range []string{base, base + "/a", base + "/a/b"} {
				if ents, _ := os.ReadDir(d); len(ents) != 1 {
					t.Errorf("written next to dst, in %s: %v", d, ents)
				}
			}
		})
	}
}

func TestApplyLeadingSlash(t *testing.T) {
	dst, _ := mustApply(t, Options{}, []ent{dir("/etc/"), reg("/etc/x", "x"), hard("/etc/y", "/etc/x")})
	content(t, dst+"/etc/y", "x")
}

// TestApplyNoEscapeThroughSymlinks plants a host directory and tries every
// way a layer could write into it through symlinks that point at it.
func TestApplyNoEscapeThroughSymlinks(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(host+"/secret", []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", 20) + strings.TrimPrefix(host, "/")
	lower := lowerOf(t, sym("lowabs", host), sym("lowrel", up), sym("root", "/"))
	dst, _, err := applyTar(t, Options{Privileged: os.Geteuid() == 0}, []ent{
		// symlinks pointing out are stored as they are
		sym("abs", host), sym("rel", up), sym("secretlink", host+"/secret"),
		// and entries written through them land inside the image
		reg("abs/secret", "pwned"), reg("rel/new", "pwned"),
		dir("lowabs/d/"), reg("lowrel/f", "pwned"), reg("root"+host+"/g", "pwned"),
		reg("abs/.wh.other", ""), reg("lowabs/.wh..wh..opq", ""),
		hard("hl", "abs/secret"), hard("hl2", "secretlink"),
		sym("abs/s", "/etc/shadow"),
	}, lower)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	content(t, host+"/secret", "original")
	if ents, _ := os.ReadDir(host); len(ents) != 1 {
		t.Errorf("host directory changed: %v", ents)
	}
	in := filepath.Join(dst, host)
	content(t, in+"/new", "pwned")
	content(t, in+"/f", "pwned")
	content(t, in+"/g", "pwned")
	content(t, in+"/secret", "pwned")
	isWhiteoutAt(t, in+"/other")
	opaqueAt(t, in, true)
	fileType(t, dst+"/abs", 0o120000)
	if l, _ := os.Readlink(dst + "/abs"); l != host {
		t.Errorf("abs -> %q, want %q", l, host)
	}
	content(t, dst+"/hl", "pwned")
	fileType(t, dst+"/hl2", 0o120000)
}
