package cli

// End-to-end tests of the built binaries, as root (CI runs them).

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// e2e runs the built agentkernel binary against a private data root.
type e2e struct {
	t      *testing.T
	bin    string
	agent  string
	server string
	root   string
	// env and dir are added to every command's environment, and its
	// working directory.
	env []string
	dir string
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	testutil.RequireLinux(t)
	testutil.RequireRoot(t)
	e := &e2e{
		t:     t,
		bin:   testutil.BuildBinary(t, "agentkernel"),
		agent: testutil.BuildBinary(t, "agentkernel-agent"),
		// Pulls and imports run in agentkernel-server (package fetchcmd).
		server: testutil.BuildBinary(t, "agentkernel-server"),
		root:   filepath.Join(t.TempDir(), "root"),
	}
	t.Cleanup(e.cleanup)
	return e
}

// command builds an agentkernel command; stdin is /dev/null unless set.
func (e *e2e) command(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, e.bin, args...)
	// The warm pool is off unless a test turns it on: its background
	// maintainer would outlive the command being checked.
	c.Env = append(os.Environ(), "AGENTKERNEL_ROOT="+e.root, "AGENTKERNEL_AGENT="+e.agent,
		"AGENTKERNEL_SERVER="+e.server, "AGENTKERNEL_POOL=0")
	c.Env = append(c.Env, e.env...)
	c.Dir = e.dir
	c.WaitDelay = 5 * time.Second
	return c
}

// run runs agentkernel to completion (at most two minutes).
func (e *e2e) run(stdin io.Reader, args ...string) result {
	e.t.Helper()
	// Not t.Context(): cleanup runs commands after it is cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := e.command(ctx, args...)
	c.Stdin = stdin
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("agentkernel %q: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// ok runs agentkernel and fails the test unless it exits 0.
func (e *e2e) ok(args ...string) string {
	e.t.Helper()
	r := e.run(nil, args...)
	if r.code != 0 {
		e.t.Fatalf("agentkernel %q: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs agentkernel and checks the exit code and the one-line error.
func (e *e2e) fails(code int, want string, args ...string) {
	e.t.Helper()
	r := e.run(nil, args...)
	if r.code != code {
		e.t.Errorf("agentkernel %q: exit %d, want %d\nstdout: %s\nstderr: %s", args, r.code, code, r.stdout, r.stderr)
		return
	}
	checkOneLine(e.t, r.stderr, want)
}

// list returns `list --json`.
func (e *e2e) list() []map[string]any {
	e.t.Helper()
	out := e.ok("list", "--json")
	var infos []map[string]any
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		e.t.Fatalf("list --json: %v\n%s", err, out)
	}
	return infos
}

// cleanup checks the test removed its sandboxes and left nothing that
// mentions its data root (mounts, processes); then it removes leftovers.
func (e *e2e) cleanup() {
	t := e.t
	if _, err := os.Stat(e.root); err != nil {
		return
	}
	if !t.Failed() {
		if infos := e.list(); len(infos) != 0 {
			t.Errorf("sandboxes left behind: %v", infos)
		}
	}
	e.run(nil, "remove", "--all", "--force")
	// The pool maintainer and the network daemon linger by design.
	if r := e.run(nil, "daemon", "stop"); r.code != 0 {
		t.Errorf("daemon stop: %s", r.stderr)
	}
	var leaks []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		leaks = mentions(e.root)
		if len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(leaks) > 0 {
		t.Errorf("left on the host:\n  %s", strings.Join(leaks, "\n  "))
	}
}

// mentions lists mounts and processes whose mount point or command line
// contain s.
func mentions(s string) []string {
	var found []string
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(mi), "\n") {
			if strings.Contains(line, s) {
				found = append(found, "mount: "+line)
			}
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			found = append(found, "process "+p.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

func TestE2ERun(t *testing.T) {
	e := newE2E(t)
	r := e.run(nil, "run", "--", "echo", "hello")
	if r.code != 0 || r.stdout != "hello\n" || r.stderr != "" {
		t.Fatalf("run -- echo hello: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// Without "--", the command's own flags pass through.
	if out := e.ok("run", "echo", "-n", "x"); out != "x" {
		t.Errorf("run echo -n x: %q", out)
	}
	if r := e.run(nil, "run", "--", "sh", "-c", "exit 3"); r.code != 3 || r.stderr != "" {
		t.Errorf("exit 3: got exit %d, stderr %q", r.code, r.stderr)
	}
	if r := e.run(nil, "run", "--", "sh", "-c", "kill -9 $$"); r.code != 137 {
		t.Errorf("killed by SIGKILL: got exit %d, want 137", r.code)
	}
	e.fails(127, "agentkernel: ", "run", "--", "no-such-command-e2e")
	e.fails(126, "agentkernel: ", "run", "--", "/usr/lib/os-release")
	if r := e.run(strings.NewReader("piped\ndata\n"), "run", "--", "cat"); r.code != 0 || r.stdout != "piped\ndata\n" {
		t.Errorf("stdin: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := e.run(nil, "run", "--", "cat"); r.code != 0 || r.stdout != "" {
		t.Errorf("stdin /dev/null: exit %d, stdout %q", r.code, r.stdout)
	}
	if out := e.ok("run", "-e", "A=1", "-w", "/tmp", "--", "sh", "-c", `echo "$A $(pwd)"`); out != "1 /tmp\n" {
		t.Errorf("-e/-w: %q", out)
	}
	start := time.Now()
	r = e.run(nil, "run", "--timeout", "1s", "--", "sleep", "30")
	if r.code != 124 || !strings.Contains(r.stderr, "command timed out after 1s") || time.Since(start) > 20*time.Second {
		t.Errorf("timeout: exit %d after %v, stderr %q", r.code, time.Since(start), r.stderr)
	}
	if n := len(e.list()); n != 0 {
		t.Errorf("%d ephemeral sandboxes left", n)
	}
	out := e.ok("run", "--keep", "--name", "kept", "--", "true")
	if out != "" || len(e.list()) != 1 {
		t.Errorf("--keep: stdout %q, sandboxes %v", out, e.list())
	}
	e.ok("remove", "kept")
}

// TestE2ERunInterrupt: Ctrl-C during run removes the ephemeral sandbox and
// exits 130.
func TestE2ERunInterrupt(t *testing.T) {
	e := newE2E(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := e.command(ctx, "run", "--name", "interrupted", "--", "sleep", "60")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the sandbox to run", func() bool {
		for _, in := range e.list() {
			if in["name"] == "interrupted" && in["status"] == "running" {
				return true
			}
		}
		return false
	})
	time.Sleep(200 * time.Millisecond) // let the command start
	c.Process.Signal(syscall.SIGINT)
	err := c.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Errorf("after SIGINT: %v (stderr %q), want exit 130", err, stderr.String())
	}
	if n := len(e.list()); n != 0 {
		t.Errorf("the ephemeral sandbox was left behind")
	}
}

// TestE2EExecSignals: Ctrl-C during exec reaches the sandboxed command,
// which decides how to end.
func TestE2EExecSignals(t *testing.T) {
	e := newE2E(t)
	const name = "e2e-signals"
	e.ok("create", "--start", name)
	defer e.ok("remove", name)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := e.command(ctx, "exec", name, "--", "sh", "-c", `trap 'echo got INT; exit 9' INT; echo ready; while :; do sleep 0.1; done`)
	var stdout syncBuffer
	c.Stdout = &stdout
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the command to start", func() bool { return strings.Contains(stdout.String(), "ready") })
	c.Process.Signal(syscall.SIGINT)
	err := c.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 9 || !strings.Contains(stdout.String(), "got INT") {
		t.Errorf("after SIGINT: %v, stdout %q; want exit 9 and the trap's output", err, stdout.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestE2ELifecycle(t *testing.T) {
	e := newE2E(t)
	const name = "e2e-life"
	if out := e.ok("create", name); out != name+"\n" {
		t.Errorf("create printed %q", out)
	}
	e.fails(4, "already exists", "create", name)
	e.fails(4, "already exists", "create", "--name", name, "-p", "restrictive")
	if infos := e.list(); len(infos) != 1 || infos[0]["status"] != "created" ||
		infos[0]["config"].(map[string]any)["profile"] != "moderate" {
		t.Errorf("a duplicate create changed something: %v", infos)
	}
	e.fails(4, "created", "exec", name, "--", "true")
	e.fails(3, "not found", "exec", "e2e-missing", "--", "true")
	e.fails(3, "not found", "info", "e2e-missing")
	e.fails(2, "bad-", "exec", "bad-", "--", "true")

	e.ok("start", name)
	if out := e.ok("exec", name, "--", "echo", "hi"); out != "hi\n" {
		t.Errorf("exec echo: %q", out)
	}
	if out := e.ok("exec", "-e", "FOO=bar", "-w", "/tmp", name, "--", "sh", "-c", "echo $FOO; pwd"); out != "bar\n/tmp\n" {
		t.Errorf("exec -e -w: %q", out)
	}
	if out := e.ok("exec", name, "-e", "FOO=baz", "--", "sh", "-c", "echo $FOO"); out != "baz\n" {
		t.Errorf("exec NAME -e ... --: %q", out)
	}
	if out := e.ok("exec", name, "--", "hostname"); out != name+"\n" {
		t.Errorf("hostname: %q", out)
	}
	if r := e.run(nil, "exec", name, "--", "sh", "-c", "echo err >&2; exit 5"); r.code != 5 || r.stderr != "err\n" {
		t.Errorf("exec exit 5: %d %q", r.code, r.stderr)
	}
	e.fails(127, "agentkernel: ", "exec", name, "--", "no-such-command-e2e")

	infos := e.list()
	if len(infos) != 1 || infos[0]["name"] != name || infos[0]["status"] != "running" || infos[0]["backend"] != "native" {
		t.Errorf("list --json: %v", infos)
	}
	if out := e.ok("list"); !strings.Contains(out, "NAME") || !strings.Contains(out, name) || !strings.Contains(out, "running") {
		t.Errorf("list:\n%s", out)
	}
	if out := e.ok("info", name); !strings.Contains(out, "Network:") || !strings.Contains(out, "nat, egress: default") {
		t.Errorf("info:\n%s", out)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(e.ok("info", "--json", name)), &info); err != nil || info["status"] != "running" ||
		info["config"].(map[string]any)["network"] != "nat" {
		t.Errorf("info --json: %v %v", err, info)
	}

	t.Run("cp", func(t *testing.T) { testE2ECp(t, e, name) })
	t.Run("detached", func(t *testing.T) { testE2EDetached(t, e, name) })

	e.ok("stop", name)
	e.fails(4, "stopped", "exec", name, "--", "true")
	if infos := e.list(); len(infos) != 1 || infos[0]["status"] != "stopped" {
		t.Errorf("after stop: %v", infos)
	}
	e.ok("stop", name) // stopping a stopped sandbox is fine
	e.ok("start", name)
	if out := e.ok("exec", name, "--", "cat", "/tmp/in.txt"); out != "file content\n" {
		t.Errorf("a file did not survive stop/start: %q", out)
	}
	e.ok("sandbox", "remove", name)
	e.fails(3, "not found", "exec", name, "--", "true")
	e.fails(3, "not found", "remove", name)
	e.ok("remove", "--force", name)
	if infos := e.list(); len(infos) != 0 {
		t.Errorf("after remove: %v", infos)
	}
}

func testE2ECp(t *testing.T, e *e2e, name string) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte("file content\n"), 0o640)
	e.ok("cp", in, name+":/tmp/in.txt")
	if out := e.ok("exec", name, "--", "cat", "/tmp/in.txt"); out != "file content\n" {
		t.Errorf("cp in: %q", out)
	}
	if out := e.ok("exec", name, "--", "stat", "-c", "%a", "/tmp/in.txt"); out != "640\n" {
		t.Errorf("cp in mode: %q", out)
	}
	e.ok("exec", name, "--", "sh", "-c", "printf 'from sandbox' > /tmp/out.txt")
	out := filepath.Join(dir, "out.txt")
	e.ok("cp", name+":/tmp/out.txt", out)
	if b, err := os.ReadFile(out); err != nil || string(b) != "from sandbox" {
		t.Errorf("cp out: %q %v", b, err)
	}
	if got := e.ok("cp", name+":/tmp/out.txt", "-"); got != "from sandbox" {
		t.Errorf("cp to stdout: %q", got)
	}
	// A directory tree, both ways; into an existing directory it lands
	// under its own name.
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "sub", "deeper"), 0o755)
	os.WriteFile(filepath.Join(tree, "a"), []byte("A"), 0o644)
	os.WriteFile(filepath.Join(tree, "sub", "deeper", "b"), bytes.Repeat([]byte{0, 1, 2, 255}, 300000), 0o755)
	e.ok("exec", name, "--", "mkdir", "-p", "/tmp/dest")
	e.ok("cp", tree, name+":/tmp/dest")
	if got := e.ok("exec", name, "--", "sh", "-c", "cat /tmp/dest/tree/a; wc -c < /tmp/dest/tree/sub/deeper/b"); got != "A1200000\n" {
		t.Errorf("cp dir in: %q", got)
	}
	back := filepath.Join(dir, "back")
	e.ok("cp", name+":/tmp/dest/tree", back)
	for _, rel := range []string{"a", "sub/deeper/b"} {
		want, _ := os.ReadFile(filepath.Join(tree, rel))
		got, err := os.ReadFile(filepath.Join(back, rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("cp dir out: %s differs (%v)", rel, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(back, "sub/deeper/b")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("cp dir out mode: %v %v", fi, err)
	}
	// Bad paths change nothing.
	e.fails(2, "..", "cp", in, name+":/tmp/../etc/x")
	e.fails(2, "..", "cp", name+":/tmp/../etc/hostname", filepath.Join(dir, "x"))
	e.fails(3, "", "cp", name+":/tmp/does-not-exist", filepath.Join(dir, "x"))
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a failed cp left a file")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 4 { // in.txt out.txt tree back
		t.Errorf("cp left temporary files: %v", ents)
	}
}

func testE2EDetached(t *testing.T, e *e2e, name string) {
	id := strings.TrimSpace(e.ok("exec", "-d", name, "--", "sh", "-c", "echo out; echo err >&2; exec sleep 60"))
	if id == "" {
		t.Fatal("exec -d printed no id")
	}
	if out := e.ok("ps", name); !strings.Contains(out, id) || !strings.Contains(out, "running") {
		t.Errorf("ps:\n%s", out)
	}
	waitFor(t, 10*time.Second, "logs", func() bool {
		return e.ok("logs", name, id) == "out\n" && e.ok("logs", "--stderr", name, id) == "err\n"
	})
	e.ok("kill", name, id, "-s", "KILL")
	waitFor(t, 10*time.Second, "the process to exit", func() bool {
		var procs []map[string]any
		json.Unmarshal([]byte(e.ok("ps", "--json", name)), &procs)
		return len(procs) == 1 && procs[0]["state"] == "exited"
	})
	e.fails(3, "", "logs", name, "no-such-id")
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
