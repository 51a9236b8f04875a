//go:build linux

package native

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

const rootlessUID = 65534 // nobody

// TestRootless runs TestRootlessInner in a copy of this test binary as an
// ordinary user (nobody): the backend as an unprivileged user runs it.
func TestRootless(t *testing.T) {
	testutil.RequireRoot(t)
	agent := testutil.BuildBinary(t, "agentkernel-agent")
	dir, err := os.MkdirTemp("", "ak-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAll(dir) })
	os.Chmod(dir, 0o755)
	self, _ := os.Executable()
	bin, agentCopy, data := filepath.Join(dir, "native.test"), filepath.Join(dir, "agentkernel-agent"), filepath.Join(dir, "data")
	for src, dst := range map[string]string{self: bin, agent: agentCopy} {
		if err := copyFile(src, dst, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(data, rootlessUID, rootlessUID)

	cmd := exec.Command(bin, "-test.run=^TestRootlessInner$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = []string{"AK_ROOTLESS_AGENT=" + agentCopy, "AK_ROOTLESS_ROOT=" + data, "HOME=" + data, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: rootlessUID, Gid: rootlessUID}}
	out, err := cmd.CombinedOutput()
	t.Logf("as uid %d:\n%s", rootlessUID, out)
	if strings.Contains(string(out), "--- SKIP") {
		testutil.Require(t, false, "rootless sandboxes unavailable here: "+string(out))
	}
	if err != nil {
		t.Fatalf("rootless run failed: %v", err)
	}
}

// TestRootlessInner is TestRootless's body, run as the ordinary user.
func TestRootlessInner(t *testing.T) {
	agent, root := os.Getenv("AK_ROOTLESS_AGENT"), os.Getenv("AK_ROOTLESS_ROOT")
	if agent == "" || os.Geteuid() == 0 {
		t.Skip("run by TestRootless")
	}
	b := New(Options{AgentPath: agent})
	if err := b.Probe(t.Context()); err != nil {
		t.Skipf("probe: %v", err)
	}
	cfg, _, _ := sandbox.Resolve(sandbox.Options{Network: new(false)})
	fs, err := image.NewStore(root, image.Options{}).Resolve(t.Context(), "host")
	if err != nil {
		t.Fatal(err)
	}
	spec := &sandbox.Spec{ID: "rootless-1", Name: "rootless", Config: cfg, RootFS: fs, Dir: filepath.Join(root, "sandboxes", "rootless")}
	os.MkdirAll(spec.Dir, 0o700)
	rt, err := b.Start(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	c := agentv1.NewClient(func(ctx context.Context) (net.Conn, error) { return b.Dial(ctx, spec, rt) })
	sh := func(script string) string {
		var out, errb strings.Builder
		st, err := c.Exec(t.Context(), agentv1.ExecSpec{Args: []string{"sh", "-c", script}}, nil, &out, &errb)
		if err != nil || st.Code != 0 {
			t.Fatalf("%q: %v %+v %s", script, err, st, errb.String())
		}
		return strings.TrimSpace(out.String())
	}
	if got := sh("id -u; hostname; echo x > /root/f && cat /root/f; cat /proc/self/uid_map | tr -s ' '"); got != "0\nrootless\nx\n 0 "+strconv.Itoa(rootlessUID)+" 1" {
		t.Errorf("inside: %q", got)
	}
	if got := sh("grep -E 'NoNewPrivs|Seccomp:' /proc/self/status"); got != "NoNewPrivs:\t1\nSeccomp:\t2" {
		t.Errorf("confinement: %q", got)
	}
	if _, _, code := runIn(t, c, "cat", "/etc/shadow"); code == 0 {
		t.Error("/etc/shadow readable")
	}
	st, _ := os.ReadFile("/proc/" + strconv.Itoa(rt.PID) + "/status")
	if !strings.Contains(string(st), "Uid:\t"+strconv.Itoa(rootlessUID)) {
		t.Errorf("host view of the agent:\n%s", st)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Stop(ctx, spec, rt); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(spec.Dir); len(ents) != 0 {
		t.Errorf("left in spec.Dir: %v", ents)
	}
}

func runIn(t *testing.T, c *agentv1.Client, args ...string) (string, string, int) {
	var out, errb strings.Builder
	st, err := c.Exec(t.Context(), agentv1.ExecSpec{Args: args}, nil, &out, &errb)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return out.String(), errb.String(), st.Code
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
