package detect

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitScript(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   [][]string
	}{
		{"", nil},
		{"   \n\t ", nil},
		{"pytest -q", [][]string{{"pytest", "-q"}}},
		{"a; b && c || d | e & f\ng", [][]string{{"a"}, {"b"}, {"c"}, {"d"}, {"e"}, {"f"}, {"g"}}},
		{"(cd app) && make", [][]string{{"cd", "app"}, {"make"}}},
		{`echo 'a b' "c \"d\" $e" f\ g`, [][]string{{"echo", "a b", `c "d" $e`, "f g"}}},
		{"echo '' \"\"", [][]string{{"echo", "", ""}}},
		{"a \\\nb", [][]string{{"a", "b"}}},
		{"# only a comment", nil},
		{"go test # comment; rm -rf /\nmake", [][]string{{"go", "test"}, {"make"}}},
		{"echo a#b", [][]string{{"echo", "a#b"}}},
		{"node x.js > out.log 2>&1", [][]string{{"node", "x.js"}}},
		{"cat <in >>out 2>/dev/null", [][]string{{"cat"}}},
		{">log make", [][]string{{"make"}}},
		{"echo $(date; python3 -V) `uname -a` done", [][]string{{"echo", "$(date; python3 -V)", "`uname -a`", "done"}}},
		{"if pytest; then echo ok; else exit 1; fi", [][]string{{"pytest"}, {"echo", "ok"}, {"exit", "1"}}},
		{"! make check", [][]string{{"make", "check"}}},
		{"while true; do sleep 1; done", [][]string{{"true"}, {"sleep", "1"}}},
		{"{ cargo build; }", [][]string{{"cargo", "build"}}},
		{"'unterminated", [][]string{{"unterminated"}}},
		{`"unterminated`, [][]string{{"unterminated"}}},
		{"echo $(unterminated", [][]string{{"echo", "$(unterminated"}}},
		{"echo `unterminated", [][]string{{"echo", "`unterminated"}}},
		{"trailing\\", [][]string{{"trailing"}}},
	} {
		if got := splitScript(tc.script); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitScript(%q) = %q; want %q", tc.script, got, tc.want)
		}
	}
}

func TestSplitScriptBounded(t *testing.T) {
	script := strings.Repeat("x ", maxScript) + "; pytest"
	for _, cmd := range splitScript(script) {
		if cmd[0] == "pytest" {
			t.Fatal("read past maxScript")
		}
	}
}

func FuzzSplitScript(f *testing.F) {
	for _, s := range []string{"sh -c 'pytest'", "a && b || c", `"x\"y" $(z) ` + "`w`", "2>&1 >f <g", "if x; then y; fi", "#c\nd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		for _, words := range splitScript(script) {
			if len(words) == 0 {
				t.Fatalf("empty simple command from %q", script)
			}
		}
		// Whatever the script, resolution terminates without panicking and
		// only ever returns a table runtime.
		if m, ok := resolveScript(script, nil, 0); ok {
			if _, known := RuntimeImage(m.rt.name); !known {
				t.Fatalf("resolved to unknown runtime %q", m.rt.name)
			}
		}
		resolveArgv([]string{"sh", "-c", script}, nil, 0)
		resolveArgv(strings.Fields(script), nil, 0)
	})
}
