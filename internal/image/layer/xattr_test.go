package layer

import (
	"archive/tar"
	"strings"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

func withXattrs(e ent) ent {
	return e.with(func(h *tar.Header) {
		h.PAXRecords = map[string]string{
			"SCHILY.xattr.user.mime":               "text/plain",
			"SCHILY.xattr.user.overlay.opaque":     "y",
			"SCHILY.xattr.user.overlay.redirect":   "/etc",
			"SCHILY.xattr.security.capability":     "\x01\x00\x00\x02",
			"SCHILY.xattr.trusted.overlay.opaque":  "y",
			"SCHILY.xattr.system.posix_acl_access": "x",
		}
	})
}

func checkXattrs(t *testing.T, privileged bool) {
	dst, st := mustApply(t, Options{Privileged: privileged}, []ent{
		withXattrs(dir("d/")),
		withXattrs(reg("d/f", "x")),
		withXattrs(sym("d/l", "f")),
	})
	for _, p := range []string{"d", "d/f"} {
		if v, ok := xattrOf(dst+"/"+p, "user.mime"); v != "text/plain" {
			t.Errorf("%s: user.mime = %q, %v", p, v, ok)
		}
		for _, name := range []string{"user.overlay.opaque", "user.overlay.redirect", "security.capability", "trusted.overlay.opaque", "system.posix_acl_access"} {
			if v, ok := xattrOf(dst+"/"+p, name); ok {
				t.Errorf("%s: %s = %q was restored", p, name, v)
			}
		}
	}
	skipped := strings.Join(st.Skipped, "\n")
	for _, want := range []string{"d/f: xattr security.capability dropped", "d/: xattr trusted.overlay.opaque dropped", "d/f: xattr user.overlay.redirect dropped", "d/l: xattr user.mime dropped"} {
		if !strings.Contains(skipped, want) {
			t.Errorf("skipped lacks %q:\n%s", want, skipped)
		}
	}
}

func TestApplyXattrs(t *testing.T) { checkXattrs(t, false) }

// TestApplyXattrsPrivileged: root could set trusted.* and security.*; they
// are dropped all the same.
func TestApplyXattrsPrivileged(t *testing.T) {
	testutil.RequireRoot(t)
	checkXattrs(t, true)
}
