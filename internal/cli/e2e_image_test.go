package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image/imagetest"
)

// imageE2E is an e2e with a loopback registry it may use over plain HTTP.
func imageE2E(t *testing.T) (*e2e, *imagetest.Registry) {
	e := newE2E(t)
	reg := imagetest.NewRegistry(t)
	e.env = append(e.env, "AGENTKERNEL_INSECURE_REGISTRIES="+reg.Host, "DOCKER_CONFIG="+t.TempDir())
	return e, reg
}

// layeredImage is busybox plus a layer that exercises overlay semantics:
// a deleted file, an opaque directory, a hardlink, a symlink pointing
// outside the image, a path written through a lower layer's symlink.
func layeredImage(t *testing.T, osID string) v1.Image {
	base := imagetest.BusyboxLayer(t, osID)
	lower := imagetest.Layer(t,
		imagetest.File("etc/deleteme", "gone"),
		imagetest.Dir("opq"), imagetest.File("opq/old", "hidden"),
		imagetest.Dir("usr"), imagetest.Dir("usr/lib"), imagetest.Symlink("lib", "usr/lib"),
		imagetest.Dir("data"), imagetest.File("data/a", "linked"),
	)
	upper := imagetest.Layer(t,
		imagetest.Whiteout("etc", "deleteme"),
		imagetest.Opaque("opq"), imagetest.File("opq/new", "visible"),
		imagetest.Hardlink("data/b", "data/a"),
		imagetest.Symlink("escape", "/../../../etc/shadow"),
		imagetest.File("lib/through-symlink", "landed"),
	)
	return imagetest.Image(t, v1.Config{
		Env:        []string{"PATH=/bin", "GREETING=hi"},
		WorkingDir: "/home/app",
		User:       "app",
		Entrypoint: []string{"/bin/echo"},
		Cmd:        []string{"from", "image"},
	}, base, lower, upper)
}

func TestE2EImagePullAndRun(t *testing.T) {
	e, reg := imageE2E(t)
	ref := reg.Ref("test/busybox:1")
	reg.Push(ref, layeredImage(t, "akimage"))

	if out := e.ok("image", "pull", ref); !strings.Contains(out, ref) || !strings.Contains(out, "sha256:") {
		t.Fatalf("pull printed %q", out)
	}
	if out := e.ok("image", "list"); !strings.Contains(out, ref) || !strings.Contains(out, "linux/amd64") {
		t.Fatalf("list: %q", out)
	}

	// The image's userland, not the host's.
	if out := e.ok("run", "-i", ref, "--", "cat", "/etc/os-release"); !strings.Contains(out, "ID=akimage") {
		t.Fatalf("os-release: %q", out)
	}
	// Env, WorkingDir and User from the image config.
	if out := e.ok("run", "-i", ref, "--", "sh", "-c", "echo $GREETING; pwd; id -u"); out != "hi\n/home/app\n1000\n" {
		t.Fatalf("image config not honoured: %q", out)
	}
	// Flags win over the image config.
	if out := e.ok("run", "-i", ref, "-u", "root", "-w", "/tmp", "-e", "GREETING=yo", "--", "sh", "-c", "echo $GREETING; pwd; id -u"); out != "yo\n/tmp\n0\n" {
		t.Fatalf("flags did not win: %q", out)
	}
	// No command: Entrypoint + Cmd.
	if out := e.ok("run", "-i", ref); out != "from image\n" {
		t.Fatalf("entrypoint/cmd: %q", out)
	}

	// Layer semantics, as the sandbox's overlay shows them.
	script := `ls /etc/deleteme 2>/dev/null || echo deleted
ls /opq
cat /data/b; stat -c %h /data/a
readlink /escape
cat /usr/lib/through-symlink`
	want := "deleted\nnew\nlinked2\n/../../../etc/shadow\nlanded"
	if out := e.ok("run", "-i", ref, "--", "sh", "-c", script); out != want {
		t.Fatalf("layer semantics:\n got %q\nwant %q", out, want)
	}
	// Image files belong to sandbox root, who may change them (copy-up),
	// without touching the shared layer.
	if out := e.ok("run", "-i", ref, "-u", "root", "--", "sh", "-c", "stat -c %u /etc/os-release; echo changed > /etc/os-release && cat /etc/os-release"); out != "0\nchanged\n" {
		t.Fatalf("root in an image: %q", out)
	}
	if out := e.ok("run", "-i", ref, "--", "cat", "/etc/os-release"); !strings.Contains(out, "ID=akimage") {
		t.Fatalf("a sandbox's write reached the image: %q", out)
	}
}

func TestE2EImageManyFiles(t *testing.T) {
	e, reg := imageE2E(t)
	entries := []imagetest.Entry{imagetest.Dir("many")}
	for i := range 10000 {
		entries = append(entries, imagetest.File(fmt.Sprintf("many/f%05d", i), "x"))
	}
	ref := reg.Ref("test/many:1")
	reg.Push(ref, imagetest.Image(t, v1.Config{Env: []string{"PATH=/bin"}}, imagetest.BusyboxLayer(t, "many"), imagetest.Layer(t, entries...)))
	if out := e.ok("run", "-i", ref, "--", "sh", "-c", "ls /many | wc -l"); strings.TrimSpace(out) != "10000" {
		t.Fatalf("files: %q", out)
	}
}

func TestE2EImageImport(t *testing.T) {
	e := newE2E(t)
	img := layeredImage(t, "imported")
	dir := t.TempDir()

	saved := filepath.Join(dir, "saved.tar")
	tag, _ := name.NewTag("example.com/saved:1")
	if err := tarball.WriteToFile(saved, tag, img); err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}

	e.ok("image", "import", saved)
	e.ok("image", "import", "--tag", "example.com/layout:2", filepath.Join(dir, "layout"))
	for _, ref := range []string{"example.com/saved:1", "example.com/layout:2"} {
		if out := e.ok("run", "-i", ref, "--", "cat", "/etc/os-release"); !strings.Contains(out, "ID=imported") {
			t.Fatalf("%s: %q", ref, out)
		}
		if out := e.ok("run", "-i", ref); out != "from image\n" {
			t.Fatalf("%s entrypoint: %q", ref, out)
		}
	}
	// One set of layers for both.
	if ents, _ := os.ReadDir(filepath.Join(e.root, "images", "layers")); len(ents) != 3 {
		t.Fatalf("%d layer directories for two imports of one image", len(ents))
	}
}

func TestE2EImageBadInput(t *testing.T) {
	e, reg := imageE2E(t)
	e.fails(errdefs.ExitUsage, "image reference", "run", "-i", "UPPER/Case", "--", "true")
	e.fails(errdefs.ExitNotFound, "not found", "run", "-i", reg.Ref("no/such:1"), "--", "true")
	e.fails(errdefs.ExitNotFound, "not in the store", "image", "inspect", "nope:1")
	e.fails(errdefs.ExitNotFound, "no such file", "image", "import", filepath.Join(t.TempDir(), "missing.tar"))

	evil := filepath.Join(t.TempDir(), "evil.tar")
	tag, _ := name.NewTag("evil:1")
	img := imagetest.Image(t, v1.Config{}, imagetest.Layer(t, imagetest.File("../../../../../../../tmp/agentkernel-evil", "pwned")))
	if err := tarball.WriteToFile(evil, tag, img); err != nil {
		t.Fatal(err)
	}
	e.fails(errdefs.ExitUsage, "", "image", "import", evil)
	if _, err := os.Stat("/tmp/agentkernel-evil"); err == nil {
		os.Remove("/tmp/agentkernel-evil")
		t.Fatal("an archive wrote outside the store")
	}
	if out := e.ok("image", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("failed imports and pulls left images: %s", out)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "images", "layers")); len(ents) != 0 {
		t.Fatalf("failed imports left layers: %d", len(ents))
	}
}

func TestE2EImageRemoveAndPrune(t *testing.T) {
	e, reg := imageE2E(t)
	ref := reg.Ref("test/prune:1")
	reg.Push(ref, layeredImage(t, "prune"))
	e.ok("create", "-i", ref, "--start", "user")
	e.fails(errdefs.ExitConflict, "used by sandbox user", "image", "rm", ref)
	e.ok("image", "rm", "--force", ref)
	e.ok("image", "prune")
	// The sandbox still runs on its layers.
	if out := e.ok("exec", "user", "--", "cat", "/etc/os-release"); !strings.Contains(out, "ID=prune") {
		t.Fatalf("after prune: %q", out)
	}
	e.ok("remove", "--force", "user")
	if out := e.ok("image", "prune"); !strings.Contains(out, "removed 3 layer(s)") {
		t.Fatalf("prune: %q", out)
	}
}

func TestE2EImageAuto(t *testing.T) {
	e, reg := imageE2E(t)
	ref := reg.Ref("team/app:1")
	reg.Push(ref, layeredImage(t, "auto"))
	project := t.TempDir()
	os.WriteFile(filepath.Join(project, "agentkernel.toml"), []byte("[sandbox]\nbase_image = \""+ref+"\"\n"), 0o644)
	e.dir = project
	r := e.run(nil, "run", "-i", "auto", "--", "cat", "/etc/os-release")
	if r.code != 0 || !strings.Contains(r.stdout, "ID=auto") || !strings.Contains(r.stderr, "agentkernel.toml") {
		t.Fatalf("--image auto: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Nothing to detect from: the host image.
	e.dir = t.TempDir()
	if r := e.run(nil, "run", "-i", "auto", "--", "true"); r.code != 0 || !strings.Contains(r.stderr, "image host") {
		t.Fatalf("--image auto with nothing to go by: exit %d %s", r.code, r.stderr)
	}
}

// TestE2EImageKilledPull kills a pull halfway through a layer: nothing of
// the image is visible, and the next pull succeeds.
func TestE2EImageKilledPull(t *testing.T) {
	e, reg := imageE2E(t)
	ref := reg.Ref("test/killed:1")
	reg.Push(ref, layeredImage(t, "killed"))
	stalled, release := reg.Stall()
	defer release()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pull := e.command(ctx, "image", "pull", ref)
	if err := pull.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stalled:
	case <-ctx.Done():
		t.Fatal("the pull never reached a blob")
	}
	pull.Process.Kill()
	pull.Wait()

	if out := e.ok("image", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("a killed pull left a visible image: %s", out)
	}
	e.fails(errdefs.ExitNotFound, "not in the store", "image", "inspect", ref)
	release()
	e.ok("image", "pull", ref)
	if out := e.ok("run", "-i", ref, "--", "cat", "/etc/os-release"); !strings.Contains(out, "ID=killed") {
		t.Fatalf("after the retry: %q", out)
	}
}
