package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

const unprivEnv = "LAYER_TEST_UNPRIVILEGED_DST"

// TestApplyAsUnprivilegedUser runs Apply as nobody, as agentkernel does when
// it is not root: read-only directories must still get their contents,
// whiteouts must be creatable (the kernel allows 0/0 char devices to anyone
// since 5.8), devices are skipped.
func TestApplyAsUnprivilegedUser(t *testing.T) {
	if dst := os.Getenv(unprivEnv); dst != "" {
		unprivilegedChild(dst)
		return
	}
	testutil.RequireRoot(t)
	// Not t.TempDir: nobody must be able to reach the binary and dst.
	base, err := os.MkdirTemp("", "layer-unprivileged-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	bin := filepath.Join(base, "layer.test")
	copyFile(t, os.Args[0], bin)
	dst := filepath.Join(base, "dst")
	os.Mkdir(dst, 0o755)
	os.Chown(dst, 65534, 65534)

	cmd := exec.Command(bin, "-test.run=^TestApplyAsUnprivilegedUser$")
	cmd.Env = append(os.Environ(), unprivEnv+"="+dst)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apply as nobody: %v\n%s", err, out)
	}
	if st := lstat(t, dst+"/ro/f"); st.Uid != 65534 {
		t.Errorf("ro/f owned by %d", st.Uid)
	}
	content(t, dst+"/ro/f", "x")
	perm(t, dst+"/ro", 0o555)
	perm(t, dst+"/suid", 0o755)
	isWhiteoutAt(t, dst+"/gone")
	absent(t, dst+"/null")
	if v, _ := xattrOf(dst+"/ro/f", "user.k"); v != "v" {
		t.Errorf("user.k = %q", v)
	}
}

func unprivilegedChild(dst string) {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, e := range []ent{
		dir("ro/").with(func(h *tar.Header) { h.Mode = 0o555 }),
		reg("ro/f", "x").with(func(h *tar.Header) {
			h.Uid = 0
			h.PAXRecords = map[string]string{"SCHILY.xattr.user.k": "v"}
		}),
		reg("suid", "x").with(func(h *tar.Header) { h.Mode = 0o4755 }),
		reg(".wh.gone", ""),
		dev("null", tar.TypeChar, 1, 3),
	} {
		w.WriteHeader(e.Header)
		w.Write([]byte(e.body))
	}
	w.Close()
	if _, err := Apply(context.Background(), &b, dst, nil, Options{}); err != nil {
		os.Stderr.WriteString(err.Error())
		os.Exit(1)
	}
	os.Exit(0)
}

func copyFile(t *testing.T, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
