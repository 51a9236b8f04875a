package detect

import (
	"path/filepath"
	"strings"
)

// maxDepth bounds how many wrappers and nested `sh -c` levels are looked
// through, so a hostile command line cannot recurse without end.
const maxDepth = 8

// match is a command that selected a runtime.
type match struct {
	rt   *runtime
	name string   // the command that decided, e.g. "pytest"
	via  []string // wrappers looked through, outermost first, e.g. "sh -c"
}

// weak reports a bare shell: it says nothing about the language the script
// it runs needs, so project files and the Procfile are asked first.
func (m match) weak() bool { return m.rt.isShell() }

// describe renders "pytest" or "pytest (via sh -c, uv run)".
func (m match) describe() string {
	if len(m.via) == 0 {
		return m.name
	}
	return m.name + " (via " + strings.Join(m.via, ", ") + ")"
}

// resolveArgv finds the runtime argv needs. It looks through generic
// wrappers (env, exec, nice, timeout, a shell's -c script, ...), which
// select nothing themselves, and through runtime tools (uv run, npx,
// python -m, bundle exec, ...), which keep their own runtime — the tool must
// exist in the image — but name the command they run when that needs the same
// image. A bare shell comes back as a weak match.
func resolveArgv(argv []string, via []string, depth int) (match, bool) {
	argv = dropAssignments(argv)
	if len(argv) == 0 || depth > maxDepth {
		return match{}, false
	}
	name := filepath.Base(argv[0])
	args := argv[1:]

	if inner, ok := genericInner(name, args); ok {
		return resolveArgv(inner, appendVia(via, name), depth+1)
	}

	rt, ok := lookupCommand(name)
	if !ok {
		return match{}, false
	}
	self := match{rt: rt, name: name, via: via}
	if rt.isShell() {
		if script, ok := shellScript(args); ok {
			if m, ok := resolveScript(script, appendVia(via, name+" -c"), depth+1); ok && !m.weak() {
				return m, true
			}
		}
		return self, true
	}
	if inner, verb := runtimeToolInner(name, args); len(inner) > 0 {
		tool := name
		if verb != "" {
			tool += " " + verb
		}
		if m, ok := resolveArgv(inner, appendVia(via, tool), depth+1); ok && m.rt.image == rt.image {
			return m, true
		}
	}
	return self, true
}

// resolveScript finds the runtime a shell script needs: the first simple
// command that selects one strongly, else the first weak one. Skipping
// unknown commands is what makes `cd app && pytest` select Python.
func resolveScript(script string, via []string, depth int) (match, bool) {
	var weak match
	found := false
	for _, words := range splitScript(script) {
		m, ok := resolveArgv(words, via, depth)
		if !ok {
			continue
		}
		if !m.weak() {
			return m, true
		}
		if !found {
			weak, found = m, true
		}
	}
	return weak, found
}

func appendVia(via []string, w string) []string {
	return append(via[:len(via):len(via)], w)
}

// dropAssignments removes leading NAME=value words, which a shell (and a
// Procfile) treats as environment for the command that follows.
func dropAssignments(argv []string) []string {
	for len(argv) > 0 && isAssignment(argv[0]) {
		argv = argv[1:]
	}
	return argv
}

func isAssignment(w string) bool {
	i := strings.IndexByte(w, '=')
	if i <= 0 {
		return false
	}
	for j, c := range w[:i] {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (j == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// skipOptions drops leading options from args; options in withArg take the
// next word as their value. "--" ends the options and is dropped.
func skipOptions(args []string, withArg ...string) []string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return args[i+1:]
		case len(a) < 2 || a[0] != '-':
			return args[i:]
		}
		for _, o := range withArg {
			if a == o {
				i++
				break
			}
		}
	}
	return nil
}

// genericInner returns the command a generic wrapper runs; ok is false when
// name is not one. Such wrappers belong to every image, so the inner command
// alone decides.
func genericInner(name string, args []string) ([]string, bool) {
	switch name {
	case "env":
		return envInner(args), true
	case "exec":
		return skipOptions(args, "-a"), true
	case "command":
		for _, a := range args {
			if a == "-v" || a == "-V" {
				return nil, true // a lookup, not a run
			}
			if len(a) == 0 || a[0] != '-' {
				break
			}
		}
		return skipOptions(args), true
	case "nohup":
		return skipOptions(args), true
	case "nice":
		return skipOptions(args, "-n"), true
	case "time":
		return skipOptions(args, "-f", "-o"), true
	case "stdbuf":
		return skipOptions(args, "-i", "-o", "-e"), true
	case "timeout":
		rest := skipOptions(args, "-s", "-k")
		if len(rest) > 0 {
			rest = rest[1:] // the duration
		}
		return rest, true
	}
	return nil, false
}

// envInner parses env(1)'s arguments: options, NAME=value assignments, and
// -S/--split-string, whose value is split on blanks (as in `#!/usr/bin/env -S
// python3 -u`; env's own quoting inside the string is not interpreted).
func envInner(args []string) []string {
	for len(args) > 0 {
		a := args[0]
		switch {
		case a == "--":
			return args[1:]
		case a == "-u" || a == "-C" || a == "--unset" || a == "--chdir":
			args = args[min(2, len(args)):]
		case a == "-S" || a == "--split-string":
			if len(args) < 2 {
				return nil
			}
			args = append(strings.Fields(args[1]), args[2:]...)
		case strings.HasPrefix(a, "--split-string="):
			args = append(strings.Fields(strings.TrimPrefix(a, "--split-string=")), args[1:]...)
		case strings.HasPrefix(a, "-S"):
			args = append(strings.Fields(a[2:]), args[1:]...)
		case len(a) > 1 && a[0] == '-', isAssignment(a):
			args = args[1:]
		default:
			return args
		}
	}
	return nil
}

// shellScript returns the script a shell runs with -c (`sh -c 'cmd'`,
// `bash -lc 'cmd'`, `bash -o pipefail -c 'cmd'`); ok is false when the shell
// runs a file or reads stdin instead.
func shellScript(args []string) (string, bool) {
	hasC := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			i++
			if hasC && i < len(args) {
				return args[i], true
			}
			return "", false
		case a == "--rcfile" || a == "--init-file":
			i++
		case strings.HasPrefix(a, "--"):
		case len(a) > 1 && (a[0] == '-' || a[0] == '+'):
			// A cluster of one-letter options; o and O take a value.
			if strings.ContainsRune(a[1:], 'c') {
				hasC = true
			}
			if strings.ContainsAny(a[1:], "oO") {
				i++
			}
		default:
			if hasC {
				return a, true
			}
			return "", false
		}
	}
	return "", false
}

// runtimeToolInner returns the command a runtime's own launcher runs
// (`uv run pytest`, `npx jest`, `python -m pytest`, `bundle exec rspec`)
// and the launcher's verb ("run", "-m", ...) for the reason text.
func runtimeToolInner(name string, args []string) (inner []string, verb string) {
	sub := func(verbs ...string) (string, []string, bool) {
		if len(args) == 0 {
			return "", nil, false
		}
		for _, v := range verbs {
			if args[0] == v {
				return v, args[1:], true
			}
		}
		return "", nil, false
	}
	switch name {
	case "uv":
		if v, rest, ok := sub("run"); ok {
			return skipOptions(rest, "--with", "--with-requirements", "--with-editable", "--python", "-p",
				"--project", "--directory", "--env-file", "--group", "--extra", "--package", "--index",
				"--default-index"), v
		}
		if _, rest, ok := sub("tool"); ok && len(rest) > 0 && rest[0] == "run" {
			return skipOptions(rest[1:], "--from", "--with", "--python", "-p"), "tool run"
		}
	case "uvx":
		return skipOptions(args, "--from", "--with", "--python", "-p"), ""
	case "pipx":
		if v, rest, ok := sub("run"); ok {
			return skipOptions(rest, "--spec", "--python"), v
		}
	case "poetry", "pipenv", "pdm", "hatch":
		if v, rest, ok := sub("run"); ok {
			return skipOptions(rest), v
		}
	case "npx", "bunx":
		return skipOptions(args, "-p", "--package"), ""
	case "npm":
		if v, rest, ok := sub("exec", "x"); ok {
			return skipOptions(rest, "-p", "--package"), v
		}
	case "pnpm":
		if v, rest, ok := sub("exec", "dlx"); ok {
			return skipOptions(rest), v
		}
	case "yarn":
		if v, rest, ok := sub("exec", "dlx"); ok {
			return skipOptions(rest, "-p", "--package"), v
		}
	case "bun":
		if v, rest, ok := sub("x"); ok {
			return skipOptions(rest), v
		}
	case "bundle", "bundler":
		if v, rest, ok := sub("exec"); ok {
			return skipOptions(rest), v
		}
	default:
		if isPythonInterpreter(name) {
			return pythonModule(args), "-m"
		}
	}
	return nil, ""
}

// isPythonInterpreter reports python, python3, python3.12 and the like.
func isPythonInterpreter(name string) bool {
	base, ok := versioned(name)
	return name == "python" || (ok && base == "python")
}

// pythonModule returns [module, args...] for `python [options] -m module
// args...`, or nil when python runs a script, -c code or a REPL.
func pythonModule(args []string) []string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-m":
			return args[i+1:]
		case strings.HasPrefix(a, "-m"):
			return append([]string{a[2:]}, args[i+1:]...)
		case a == "-X" || a == "-W":
			i++
		case a == "-c", a == "-", a == "--", len(a) == 0 || a[0] != '-':
			return nil
		}
	}
	return nil
}
