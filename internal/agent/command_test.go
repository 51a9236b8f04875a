package agent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
)

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	other := filepath.Join(dir, "other")
	os.Mkdir(bin, 0o755)
	os.Mkdir(other, 0o755)
	os.WriteFile(filepath.Join(bin, "tool"), nil, 0o755)
	os.WriteFile(filepath.Join(other, "tool"), nil, 0o755)
	os.WriteFile(filepath.Join(bin, "plain"), nil, 0o644)
	os.Mkdir(filepath.Join(bin, "adir"), 0o755)

	path := bin + ":" + other
	check := func(file, pathEnv, want, code string) {
		t.Helper()
		got, err := lookPath(file, pathEnv, dir)
		if code != "" {
			var e *v1.Error
			if !errors.As(err, &e) || e.Code != code {
				t.Errorf("%s: err %v, want %s", file, err, code)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("%s: got %q %v, want %q", file, got, err, want)
		}
	}
	check("tool", path, filepath.Join(bin, "tool"), "")
	check("tool", other+":"+bin, filepath.Join(other, "tool"), "")
	check("plain", path, "", v1.CodeNotExecutable)
	check("adir", path, "", v1.CodeCommandNotFound)
	check("missing", path, "", v1.CodeCommandNotFound)
	check("tool", "", "", v1.CodeCommandNotFound)
	check("bin/tool", "", filepath.Join(bin, "tool"), "")
	check("./bin/plain", "", "", v1.CodeNotExecutable)
	check(filepath.Join(bin, "adir"), "", "", v1.CodeNotExecutable)
	check("tool", "bin", filepath.Join(bin, "tool"), "") // relative PATH entries resolve against the working directory
}

// FuzzParseExecSpec checks that any bytes decode to either an error or a
// spec the agent can start from.
func FuzzParseExecSpec(f *testing.F) {
	f.Add([]byte(`{"args":["sh","-c","echo hi"],"env":["A=1"],"dir":"/tmp","user":"1000:1000","timeout_ms":5}`))
	f.Add([]byte(`{"args":["cat"],"stdin":true,"tty":true,"rows":24,"cols":80,"unknown":1}`))
	f.Add([]byte(`{"args":[]}`))
	f.Add([]byte(`{"args":["a\u0000b"]}`))
	f.Add([]byte(`{"args":["x"],"env":["=x"],"dir":"../x"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		spec, err := parseExecSpec(b)
		if err != nil {
			var e *v1.Error
			if !errors.As(err, &e) || e.Code != v1.CodeInvalidArgument {
				t.Fatalf("error %v is not invalid_argument", err)
			}
			return
		}
		if len(spec.Args) == 0 || spec.Args[0] == "" || spec.TimeoutMS < 0 {
			t.Fatalf("accepted unusable spec %+v", spec)
		}
		if spec.Dir != "" && !isCleanAbs(spec.Dir) {
			t.Fatalf("accepted dir %q", spec.Dir)
		}
		for _, e := range spec.Env {
			if k, _, ok := cut(e); !ok || k == "" {
				t.Fatalf("accepted env %q", e)
			}
		}
	})
}

func cut(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return "", "", false
}
