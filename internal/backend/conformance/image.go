package conformance

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/image/imagetest"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// testOCIImage runs a sandbox made from an OCI image (busybox, imported
// from a docker save archive): the image's userland and nothing of the
// host's, its config as the defaults of every exec, and sandbox root able
// to change the image's files without changing the image.
func (s *suite) testOCIImage(t *testing.T) {
	ctx := t.Context()
	const ref = "conformance.test/busybox:1"
	img := imagetest.Image(t, v1.Config{
		Env: []string{"PATH=/bin", "FROM_IMAGE=yes"}, WorkingDir: "/home/app", User: "app",
	}, imagetest.BusyboxLayer(t, "conformance"))
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.ImportImages(ctx, archive, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.m.RemoveImage(context.Background(), ref, true)
		s.m.PruneImages(context.Background())
	})

	sb := s.create(t, "oci", func(c *sandbox.Config) { c.Image = ref })
	run := func(user string, args ...string) string {
		t.Helper()
		r := s.exec(ctx, sb, agentv1.ExecSpec{Args: args, User: user}, nil)
		if r.err != nil || r.status.Code != 0 {
			t.Fatalf("%q: %v %+v %s", args, r.err, r.status, r.stderr)
		}
		return r.stdout
	}
	if out := run("", "cat", "/etc/os-release"); !strings.Contains(out, "ID=conformance") {
		t.Errorf("os-release: %q", out)
	}
	if out := run("", "sh", "-c", "echo $FROM_IMAGE; pwd; id -u"); out != "yes\n/home/app\n1000\n" {
		t.Errorf("image config: %q", out)
	}
	if out := run("", "sh", "-c", "ls /usr /var 2>/dev/null; echo done"); out != "done\n" {
		t.Errorf("host directories in an image sandbox: %q", out)
	}
	if out := run("root", "sh", "-c", "echo changed > /etc/os-release && stat -c %u /etc/os-release && cat /etc/os-release"); out != "0\nchanged\n" {
		t.Errorf("root changing an image file: %q", out)
	}
	// The change is the sandbox's own: a second sandbox sees the image.
	other := s.create(t, "oci2", func(c *sandbox.Config) { c.Image = ref })
	r := s.exec(ctx, other, agentv1.ExecSpec{Args: []string{"cat", "/etc/os-release"}}, nil)
	if !strings.Contains(r.stdout, "ID=conformance") {
		t.Errorf("a sandbox's write reached the shared image: %q %v", r.stdout, r.err)
	}
}
