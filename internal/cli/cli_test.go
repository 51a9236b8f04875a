package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

// result is one in-process CLI invocation.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the CLI in process with a private data root and environment.
func runCLI(t *testing.T, env map[string]string, stdin io.Reader, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	a := newApp(stdin, &out, &errOut)
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["AGENTKERNEL_ROOT"]; !ok {
		env["AGENTKERNEL_ROOT"] = t.TempDir()
	}
	a.getenv = func(k string) string { return env[k] }
	a.environ = func() []string {
		var kv []string
		for k, v := range env {
			kv = append(kv, k+"="+v)
		}
		return kv
	}
	code := a.main(context.Background(), args)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// TestUsageErrors: bad command lines exit 2 with exactly one line on
// stderr, before anything touches the data root.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the message
	}{
		{[]string{"run"}, "no command given"},
		{[]string{"run", "--"}, "no command given"},
		{[]string{"run", "--name", "bad-", "--", "true"}, `"bad-"`},
		{[]string{"run", "-B", "nope", "--", "true"}, `unknown backend "nope"`},
		{[]string{"run", "-p", "nope", "--", "true"}, `unknown profile "nope"`},
		{[]string{"run", "--memory", "lots", "--", "true"}, `memory "lots"`},
		{[]string{"run", "--timeout", "soon", "--", "true"}, "--timeout"},
		{[]string{"run", "-e", "=x", "--", "true"}, "environment variable"},
		{[]string{"run", "-w", "relative", "--", "true"}, "absolute"},
		{[]string{"run", "--network", "--no-network", "--", "true"}, "contradict"},
		{[]string{"run", "-v", "/tmp", "--", "true"}, "HOST:SANDBOX"},
		{[]string{"run", "--publish", "99999", "--", "true"}, "port mapping"},
		{[]string{"run", "--cpus", "0", "--", "true"}, "vcpus"},
		{[]string{"run", "--nope"}, "unknown flag: --nope"},
		{[]string{"create", "bad-"}, `"bad-"`},
		{[]string{"create", "--", "-bad-"}, `"-bad-"`},
		{[]string{"create", "-bad-"}, "unknown shorthand flag"},
		{[]string{"create", "a", "b"}, "at most"},
		{[]string{"create", "--name", "a", "b"}, "two different names"},
		{[]string{"create", strings.Repeat("x", 64)}, "at most 63"},
		{[]string{"create", "-B", "nope", "dev"}, `unknown backend "nope"`},
		{[]string{"create", "-p", "paranoid", "dev"}, `unknown profile "paranoid"`},
		{[]string{"exec"}, "missing arguments"},
		{[]string{"exec", "dev"}, "no command given"},
		{[]string{"exec", "dev", "--"}, "no command given"},
		{[]string{"exec", "bad_name_", "--", "true"}, "bad_name_"},
		{[]string{"exec", "dev", "-t", "tty"}, "must be followed by --"},
		{[]string{"exec", "dev", "-t", "x", "--", "tty"}, `unexpected argument "x"`},
		{[]string{"exec", "--sudo", "-u", "nobody", "dev", "--", "id"}, "contradict"},
		{[]string{"exec", "-d", "-t", "dev", "--", "top"}, "--detach"},
		{[]string{"attach"}, "missing arguments"},
		{[]string{"start"}, "want NAME"},
		{[]string{"stop", "ok", "not ok"}, "not ok"},
		{[]string{"remove"}, "no sandbox named"},
		{[]string{"remove", "--all", "dev"}, "--all takes no names"},
		{[]string{"info"}, "want NAME"},
		{[]string{"kill", "dev", "1", "-s", "NOPE"}, `unknown signal "NOPE"`},
		{[]string{"logs", "dev"}, "want NAME ID"},
		{[]string{"cp", "a"}, "want SRC DST"},
		{[]string{"cp", "dev:/tmp/../etc/x", "out"}, "path traversal"},
		{[]string{"cp", "in", "dev:/a/../../b"}, "path traversal"},
		{[]string{"cp", "in", "dev:relative"}, "must be absolute"},
		{[]string{"cp", "a", "b"}, "must be NAME:/path"},
		{[]string{"cp", "x:/a", "y:/b"}, "two sandboxes"},
		{[]string{"cp", "bad-:/a", "b"}, `"bad-"`},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"sandbox", "bogus"}, `unknown command "bogus"`},
		{[]string{"--log-level", "loud", "version"}, "unknown log level"},
		{[]string{"version", "extra"}, "no arguments"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			root := t.TempDir() + "/root"
			r := runCLI(t, map[string]string{"AGENTKERNEL_ROOT": root}, nil, tc.args...)
			if r.code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", r.code, r.stderr)
			}
			checkOneLine(t, r.stderr, tc.want)
			if _, err := os.Stat(root); err == nil {
				t.Errorf("a usage error created the data root")
			}
		})
	}
}

func checkOneLine(t *testing.T, stderr, want string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "agentkernel: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr is not one line starting with \"agentkernel: \": %q", stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not mention %q", stderr, want)
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{}, {"--help"}, {"run", "--help"}, {"sandbox"}, {"sb", "create", "-h"}, {"help", "exec"}} {
		r := runCLI(t, nil, nil, args...)
		if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%q: code %d, stderr %q, stdout %.80q", args, r.code, r.stderr, r.stdout)
		}
	}
}

func TestVersion(t *testing.T) {
	r := runCLI(t, nil, nil, "version")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"agentkernel", "dev", "commit:", "go1.", "agent protocol:", "v1"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("version output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runCLI(t, nil, nil, "version", "--json")
	var v map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("version --json: %v\n%s", err, r.stdout)
	}
	for _, k := range []string{"version", "commit", "go", "platform", "protocol"} {
		if v[k] == "" {
			t.Errorf("version --json lacks %q: %s", k, r.stdout)
		}
	}
	if v["protocol"] != "1" {
		t.Errorf("protocol %q, want 1", v["protocol"])
	}
	r = runCLI(t, nil, nil, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "agentkernel dev (commit ") {
		t.Errorf("--version: %d %q", r.code, r.stdout)
	}
}

func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		r := runCLI(t, nil, nil, "completion", sh)
		if r.code != 0 || len(r.stdout) < 100 {
			t.Errorf("completion %s: code %d, %d bytes, stderr %q", sh, r.code, len(r.stdout), r.stderr)
		}
	}
}

func TestSuggestionLine(t *testing.T) {
	got := suggestionLine("unknown command \"lgs\" for \"agentkernel\"\n\nDid you mean this?\n\tlogs\n\tls\n")
	want := `unknown command "lgs" for "agentkernel" (did you mean logs or ls?)`
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCommandOf(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--", "true"}, "run"},
		{[]string{"--root", "/x", "exec", "dev", "--", "ls"}, "exec"},
		{[]string{"--root=/x", "--log-level", "debug", "run"}, "run"},
		{[]string{"--help", "run"}, ""},
		{[]string{}, ""},
		{[]string{"--root"}, ""},
		{[]string{"sandbox", "run"}, "sandbox"},
	} {
		if got := commandOf(c.args); got != c.want {
			t.Errorf("commandOf(%q) = %q, want %q", c.args, got, c.want)
		}
	}
	// run's help and errors are the same built alone.
	r := runCLI(t, nil, nil, "run", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "agentkernel run [flags]") || !strings.Contains(r.stdout, "--root") {
		t.Errorf("run --help: %d %q", r.code, r.stdout)
	}
	r = runCLI(t, nil, nil, "exec", "--bogus")
	if r.code != 2 || !strings.Contains(r.stderr, "unknown flag: --bogus") {
		t.Errorf("exec --bogus: %d %q", r.code, r.stderr)
	}
}
