package detect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// project makes a directory holding files (name → content).
func project(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustImage(t *testing.T, argv []string, dir string) (Result, bool) {
	t.Helper()
	r, ok, err := Image(argv, dir)
	if err != nil {
		t.Fatalf("Image(%q): %v", argv, err)
	}
	return r, ok
}

// The Rust agentkernel's examples (README, src/languages.rs tests) and the
// issue's: these must never change.
func TestImageRustExamples(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		argv  []string
		image string
	}{
		{[]string{"python3", "-c", "print(1)"}, "python:3.12-alpine"},
		{[]string{"python3", "script.py"}, "python:3.12-alpine"},
		{[]string{"pytest"}, "python:3.12-alpine"},
		{[]string{"npm", "test"}, "node:22-alpine"},
		{[]string{"npm", "install"}, "node:22-alpine"},
		{[]string{"node", "-e", "1"}, "node:22-alpine"},
		{[]string{"cargo", "build"}, "rust:1.85-alpine"},
		{[]string{"go", "build"}, "golang:1.23-alpine"},
		{[]string{"ruby", "-e", "puts 1"}, "ruby:3.3-alpine"},
		{[]string{"sh", "script.sh"}, "alpine:3.20"},
	} {
		r, ok := mustImage(t, tc.argv, empty)
		if !ok || r.Image != tc.image {
			t.Errorf("Image(%q) = %+v, %v; want %s", tc.argv, r, ok, tc.image)
		}
	}
}

func TestImageEveryCommand(t *testing.T) {
	empty := t.TempDir()
	commands, _ := Table()
	for _, e := range commands {
		for _, argv0 := range []string{e.Match, "/usr/local/bin/" + e.Match, "./" + e.Match} {
			r, ok := mustImage(t, []string{argv0, "--version"}, empty)
			want := Result{Image: e.Image, Reason: "command " + e.Match}
			if !ok || r != want {
				t.Errorf("Image(%q) = %+v, %v; want %+v", argv0, r, ok, want)
			}
		}
	}
}

func TestImageCommandNotFound(t *testing.T) {
	empty := t.TempDir()
	for _, argv := range [][]string{
		nil,
		{},
		{""},
		{"unknown-command"},
		{"some-random-command", "pytest"}, // only argv[0] is the command
		{"/usr/bin/"},
		{"env"},
		{"env", "-i", "FOO=1"},
		{"nohup"},
		{"timeout", "10"},
		{"command", "-v", "python3"},
		{"Python3"}, // names are case-sensitive, as on Linux
		{"cd", "/app"},
	} {
		if r, ok := mustImage(t, argv, empty); ok {
			t.Errorf("Image(%q) = %+v; want not found", argv, r)
		}
	}
}

func TestImageWrappers(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		argv   []string
		image  string
		reason string
	}{
		{[]string{"env", "pytest"}, "python:3.12-alpine", "command pytest (via env)"},
		{[]string{"/usr/bin/env", "-i", "-u", "HOME", "PYTHONPATH=.", "python3", "x.py"}, "python:3.12-alpine", "command python3 (via env)"},
		{[]string{"env", "-S", "node --inspect", "x.js"}, "node:22-alpine", "command node (via env)"},
		{[]string{"env", "--split-string=cargo test"}, "rust:1.85-alpine", "command cargo (via env)"},
		{[]string{"env", "-C", "/src", "--", "go", "test"}, "golang:1.23-alpine", "command go (via env)"},
		{[]string{"sh", "-c", "pytest -q"}, "python:3.12-alpine", "command pytest (via sh -c)"},
		{[]string{"bash", "-c", "npm ci && npm test"}, "node:22-alpine", "command npm (via bash -c)"},
		{[]string{"bash", "-lc", "cd /work && cargo test"}, "rust:1.85-alpine", "command cargo (via bash -c)"},
		{[]string{"bash", "-e", "-o", "pipefail", "-c", "FOO=1 go vet ./..."}, "golang:1.23-alpine", "command go (via bash -c)"},
		{[]string{"/bin/sh", "-c", "set -e; export X=1; if make check; then echo ok; fi"}, "gcc:14-bookworm", "command make (via sh -c)"},
		{[]string{"sh", "-c", "echo start >&2; exec node server.js 2>&1 | tee log"}, "node:22-alpine", "command node (via sh -c, exec)"},
		{[]string{"bash", "-c", "time -p go test ./..."}, "golang:1.23-alpine", "command go (via bash -c, time)"},
		{[]string{"sh", "-c", "sh -c 'ruby x.rb'"}, "ruby:3.3-alpine", "command ruby (via sh -c, sh -c)"},
		{[]string{"zsh", "-c", "# comment\n\tmix test"}, "elixir:1.16-alpine", "command mix (via zsh -c)"},
		{[]string{"dash", "-c", `"$PYTHON" -m pytest`}, "alpine:3.20", "command dash"}, // "$PYTHON" is no command
		{[]string{"bash", "-c", "echo $(python3 -V)"}, "alpine:3.20", "command bash"},
		{[]string{"bash", "--norc", "-c", "php -v"}, "php:8.3-alpine", "command php (via bash -c)"},
		{[]string{"exec", "-a", "x", "java", "-jar", "a.jar"}, "eclipse-temurin:21-alpine", "command java (via exec)"},
		{[]string{"nice", "-n", "10", "dotnet", "test"}, "mcr.microsoft.com/dotnet/sdk:8.0", "command dotnet (via nice)"},
		{[]string{"nohup", "terraform", "plan"}, "hashicorp/terraform:1.10", "command terraform (via nohup)"},
		{[]string{"time", "-p", "lua", "x.lua"}, "nickblah/lua:5.4-alpine", "command lua (via time)"},
		{[]string{"timeout", "-s", "KILL", "30s", "pytest"}, "python:3.12-alpine", "command pytest (via timeout)"},
		{[]string{"stdbuf", "-oL", "cargo", "run"}, "rust:1.85-alpine", "command cargo (via stdbuf)"},
		{[]string{"command", "-p", "gcc", "x.c"}, "gcc:14-bookworm", "command gcc (via command)"},
		{[]string{"env", "nice", "timeout", "5", "sh", "-c", "go test"}, "golang:1.23-alpine", "command go (via env, nice, timeout, sh -c)"},
		// Runtime launchers keep their runtime and name what they run.
		{[]string{"uv", "run", "pytest"}, "python:3.12-alpine", "command pytest (via uv run)"},
		{[]string{"uv", "run", "--with", "rich", "--python", "3.12", "ruff", "check"}, "python:3.12-alpine", "command ruff (via uv run)"},
		{[]string{"uv", "run", "script.py"}, "python:3.12-alpine", "command uv"},
		{[]string{"uv", "run", "node", "x.js"}, "python:3.12-alpine", "command uv"}, // uv must exist
		{[]string{"uv", "tool", "run", "black", "."}, "python:3.12-alpine", "command black (via uv tool run)"},
		{[]string{"uvx", "--from", "x", "mypy"}, "python:3.12-alpine", "command mypy (via uvx)"},
		{[]string{"poetry", "run", "pytest"}, "python:3.12-alpine", "command pytest (via poetry run)"},
		{[]string{"pipx", "run", "black"}, "python:3.12-alpine", "command black (via pipx run)"},
		{[]string{"python", "-m", "pytest", "-x"}, "python:3.12-alpine", "command pytest (via python -m)"},
		{[]string{"python3", "-u", "-X", "dev", "-mpip", "install", "x"}, "python:3.12-alpine", "command pip (via python3 -m)"},
		{[]string{"python3.12", "-m", "http.server"}, "python:3.12-alpine", "command python3.12"},
		{[]string{"python3", "-c", "import pytest"}, "python:3.12-alpine", "command python3"},
		{[]string{"/opt/venv/bin/pip3.11", "install", "x"}, "python:3.12-alpine", "command pip3.11"},
		{[]string{"npx", "-y", "vitest", "run"}, "node:22-alpine", "command vitest (via npx)"},
		{[]string{"npx", "prisma", "generate"}, "node:22-alpine", "command npx"},
		{[]string{"npm", "exec", "--", "eslint", "."}, "node:22-alpine", "command eslint (via npm exec)"},
		{[]string{"pnpm", "dlx", "tsx", "x.ts"}, "node:22-alpine", "command tsx (via pnpm dlx)"},
		{[]string{"yarn", "dlx", "jest"}, "node:22-alpine", "command jest (via yarn dlx)"},
		{[]string{"bunx", "tsc"}, "node:22-alpine", "command tsc (via bunx)"},
		{[]string{"bundle", "exec", "rspec"}, "ruby:3.3-alpine", "command rspec (via bundle exec)"},
		{[]string{"bundle", "exec", "make"}, "ruby:3.3-alpine", "command bundle"},
		{[]string{"FOO=1", "deno", "test"}, "denoland/deno:alpine", "command deno"},
	} {
		r, ok := mustImage(t, tc.argv, empty)
		want := Result{Image: tc.image, Reason: tc.reason}
		if !ok || r != want {
			t.Errorf("Image(%q) = %+v, %v; want %+v", tc.argv, r, ok, want)
		}
	}
}

// A hostile command line nests wrappers without end; detection stops.
func TestImageDepthBound(t *testing.T) {
	argv := []string{"pytest"}
	for range 1000 {
		argv = append([]string{"env"}, argv...)
	}
	if r, ok := mustImage(t, argv, t.TempDir()); ok {
		t.Errorf("1000 nested env: %+v; want not found", r)
	}
	script := "pytest"
	for range 50 {
		script = "sh -c " + strings.ReplaceAll(script, " ", "\\ ")
	}
	mustImage(t, []string{"sh", "-c", script}, t.TempDir()) // terminates
}

func TestImageEveryProjectFile(t *testing.T) {
	_, files := Table()
	for _, e := range files {
		name := e.Match
		if suffix, ok := strings.CutPrefix(name, "*"); ok {
			name = "main" + suffix
		}
		dir := project(t, map[string]string{name: ""})
		r, ok := mustImage(t, []string{"unknown-command"}, dir)
		reason := "project file " + e.Match
		if name != e.Match {
			reason += " (" + name + ")"
		}
		want := Result{Image: e.Image, Reason: reason}
		if !ok || r != want {
			t.Errorf("project with %s: %+v, %v; want %+v", name, r, ok, want)
		}
	}
}

func TestImageProjectFileDetails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		image string
	}{
		{"table order: node before rust", map[string]string{"package.json": "{}", "Cargo.toml": ""}, "node:22-alpine"},
		{"table order: go before python", map[string]string{"requirements.txt": "", "go.mod": ""}, "golang:1.23-alpine"},
		{"table order: python before c", map[string]string{"Makefile": "", "pyproject.toml": ""}, "python:3.12-alpine"},
		{"table order: deno before shell", map[string]string{"deno.json": "", "build.sh": ""}, "denoland/deno:alpine"},
		{"lockfile alone", map[string]string{"pnpm-lock.yaml": ""}, "node:22-alpine"},
		{"bun text lockfile", map[string]string{"bun.lock": ""}, "node:22-alpine"},
		{"go workspace", map[string]string{"go.work": ""}, "golang:1.23-alpine"},
		{"glob needs a name before the suffix", map[string]string{".c": ""}, ""},
		{"no project files", map[string]string{"README.md": "", "LICENSE": ""}, ""},
		{"files in subdirectories do not count", map[string]string{"sub/go.mod": ""}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := project(t, tc.files)
			r, ok := mustImage(t, nil, dir)
			if got := map[bool]string{true: r.Image}[ok]; got != tc.image {
				t.Errorf("got %+v, %v; want %q", r, ok, tc.image)
			}
		})
	}

	t.Run("directories never match", func(t *testing.T) {
		dir := t.TempDir()
		for _, d := range []string{"go.mod", "x.c", "src.tf"} {
			if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if r, ok := mustImage(t, nil, dir); ok {
			t.Errorf("got %+v; want not found", r)
		}
	})

	t.Run("symlinks are followed", func(t *testing.T) {
		dir := project(t, map[string]string{"real/Cargo.toml": ""})
		if err := os.Symlink(filepath.Join(dir, "real/Cargo.toml"), filepath.Join(dir, "Cargo.toml")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/nonexistent", filepath.Join(dir, "go.mod")); err != nil {
			t.Fatal(err)
		}
		r, ok := mustImage(t, nil, dir)
		if want := (Result{Image: "rust:1.85-alpine", Reason: "project file Cargo.toml"}); !ok || r != want {
			t.Errorf("got %+v, %v; want %+v", r, ok, want)
		}
	})

	t.Run("missing directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "gone")
		if r, ok := mustImage(t, nil, dir); ok {
			t.Errorf("got %+v; want not found", r)
		}
		if r, ok := mustImage(t, []string{"go", "test"}, dir); !ok || r.Image != "golang:1.23-alpine" {
			t.Errorf("command in missing dir: got %+v, %v", r, ok)
		}
	})

	t.Run("empty dir is the current directory", func(t *testing.T) {
		t.Chdir(project(t, map[string]string{"mix.exs": ""}))
		if r, ok := mustImage(t, nil, ""); !ok || r.Image != "elixir:1.16-alpine" {
			t.Errorf("got %+v, %v", r, ok)
		}
	})
}

func TestImageProcfile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		procfile string
		image    string
		reason   string
	}{
		// The Rust agentkernel's own tests.
		{"ruby", "web: bundle exec rails server -p $PORT\nworker: rake jobs:work\n", "ruby:3.3-alpine", "Procfile web: rails (via bundle exec)"},
		{"python", "web: python manage.py runserver\n", "python:3.12-alpine", "Procfile web: python"},
		{"first known process wins", "# processes\n\nrelease: ./migrate\nweb: node server.js\nworker: python w.py\n", "node:22-alpine", "Procfile web: node"},
		{"wrappers and assignments", "web: env PORT=80 NODE_ENV=production npm start", "node:22-alpine", "Procfile web: npm (via env)"},
		{"shell process is weak", "web: sh -c './start'\nworker: go run ./cmd/worker\n", "golang:1.23-alpine", "Procfile worker: go"},
		{"only a shell", "web: bash start.sh\n", "alpine:3.20", "Procfile web: bash"},
		{"CRLF and blanks", "web:   uvicorn app:app\r\nworker:\tcelery -A x worker\r\nrelease: pip install -r r.txt\r\n", "python:3.12-alpine", "Procfile release: pip"},
		{"no colon, empty command", "garbage line\nweb:\n", "", ""},
		{"nothing known", "web: ./bin/server\n", "", ""},
		{"empty", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := project(t, map[string]string{"Procfile": tc.procfile})
			r, ok := mustImage(t, []string{"./run"}, dir)
			want := Result{Image: tc.image, Reason: tc.reason}
			if ok != (tc.image != "") || r != want {
				t.Errorf("got %+v, %v; want %+v", r, ok, want)
			}
		})
	}
}

func TestImagePrecedence(t *testing.T) {
	const toml = "[sandbox]\nname = \"app\"\nbase_image = \"registry.example/team/app:1\"\n"
	for _, tc := range []struct {
		name   string
		argv   []string
		files  map[string]string
		image  string
		reason string
	}{
		{"agentkernel.toml beats the command (config wins)", []string{"pytest"},
			map[string]string{"agentkernel.toml": toml, "package.json": "{}"},
			"registry.example/team/app:1", "agentkernel.toml sandbox.base_image"},
		{"agentkernel.toml beats project files", []string{"./run"},
			map[string]string{"agentkernel.toml": toml, "package.json": "{}", "Procfile": "web: node x"},
			"registry.example/team/app:1", "agentkernel.toml sandbox.base_image"},
		{"base_image beats runtime", nil,
			map[string]string{"agentkernel.toml": "[sandbox]\nruntime = \"go\"\nbase_image = \"alpine:3.21\"\n"},
			"alpine:3.21", "agentkernel.toml sandbox.base_image"},
		{"runtime shorthand", nil,
			map[string]string{"agentkernel.toml": "[sandbox]\nname = \"x\"\nruntime = \"dotnet\"\n", "go.mod": ""},
			"mcr.microsoft.com/dotnet/sdk:8.0", `agentkernel.toml sandbox.runtime "dotnet"`},
		{"runtime base is plain Alpine", nil,
			map[string]string{"agentkernel.toml": "[sandbox]\nruntime = \"base\"\n", "go.mod": ""},
			"alpine:3.20", `agentkernel.toml sandbox.runtime "base"`},
		{"agentkernel.toml without an image defers to project files", nil,
			map[string]string{"agentkernel.toml": "[sandbox]\nname = \"x\"\n[resources]\nvcpus = 2\n", "go.mod": ""},
			"golang:1.23-alpine", "project file go.mod"},
		{"empty base_image is unset", nil,
			map[string]string{"agentkernel.toml": "[sandbox]\nbase_image = \"\"\n", "Gemfile": ""},
			"ruby:3.3-alpine", "project file Gemfile"},
		{"agentkernel.toml beats a bare shell", []string{"bash", "x.sh"},
			map[string]string{"agentkernel.toml": toml},
			"registry.example/team/app:1", "agentkernel.toml sandbox.base_image"},
		{"project files beat Procfile", nil,
			map[string]string{"Procfile": "web: node x", "Cargo.toml": ""},
			"rust:1.85-alpine", "project file Cargo.toml"},
		{"project files beat a bare shell", []string{"sh", "ci.sh"},
			map[string]string{"package.json": "{}", "ci.sh": ""},
			"node:22-alpine", "project file package.json"},
		{"project files beat a shell script that names no runtime", []string{"sh", "-c", "./ci.sh"},
			map[string]string{"pyproject.toml": ""},
			"python:3.12-alpine", "project file pyproject.toml"},
		{"Procfile beats a bare shell", []string{"bash"},
			map[string]string{"Procfile": "web: php -S 0.0.0.0:80"},
			"php:8.3-alpine", "Procfile web: php"},
		{"a bare shell in argv beats a shell in the Procfile", []string{"zsh"},
			map[string]string{"Procfile": "web: sh x"},
			"alpine:3.20", "command zsh"},
		{"shell in a shell-only directory", []string{"sh", "x.sh"},
			map[string]string{"x.sh": ""},
			"alpine:3.20", "project file *.sh (x.sh)"},
		{"a wrapped command beats project files", []string{"sh", "-c", "cd web && npm test"},
			map[string]string{"go.mod": ""},
			"node:22-alpine", "command npm (via sh -c)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := mustImage(t, tc.argv, project(t, tc.files))
			want := Result{Image: tc.image, Reason: tc.reason}
			if !ok || r != want {
				t.Errorf("got %+v, %v; want %+v", r, ok, want)
			}
		})
	}
}

func TestImageConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		want       []string // substrings of the message
	}{
		{"syntax", "[sandbox]\nname = \n", []string{"agentkernel.toml", "line 2"}},
		{"unclosed table", "[sandbox\n", []string{"agentkernel.toml", "line 1"}},
		{"wrong type", "[sandbox]\nbase_image = 3\n", []string{"agentkernel.toml"}},
		{"sandbox not a table", "sandbox = \"python\"\n", []string{"agentkernel.toml"}},
		{"unknown runtime", "[sandbox]\nruntime = \"pyhton\"\n", []string{`"pyhton"`, "python"}},
		{"blank in base_image", "[sandbox]\nbase_image = \"python 3\"\n", []string{"base_image"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := project(t, map[string]string{"agentkernel.toml": tc.toml, "go.mod": ""})
			_, ok, err := Image(nil, dir)
			if err == nil || ok {
				t.Fatalf("got ok=%v err=%v; want an error", ok, err)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v does not wrap ErrInvalidArgument", err)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}

	t.Run("a broken agentkernel.toml is an error even with a known command", func(t *testing.T) {
		dir := project(t, map[string]string{"agentkernel.toml": "[[["})
		if _, _, err := Image([]string{"cargo", "test"}, dir); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("got %v", err)
		}
	})

	t.Run("unreadable", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "agentkernel.toml"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, _, err := Image(nil, dir)
		if err == nil || errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "agentkernel.toml") {
			t.Errorf("got %v; want a read error naming the file", err)
		}
	})

	t.Run("too large", func(t *testing.T) {
		dir := project(t, map[string]string{"Procfile": strings.Repeat("# padding\n", maxConfigSize/10+1)})
		if _, _, err := Image(nil, dir); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("got %v; want ErrInvalidArgument", err)
		}
	})
}

func TestCommandOnly(t *testing.T) {
	if r, ok := Command([]string{"sh", "-c", "cd x && pytest -q"}); !ok || r.Image != "python:3.12-alpine" {
		t.Errorf("got %+v %v", r, ok)
	}
	if _, ok := Command([]string{"./configure"}); ok {
		t.Error("an unknown command detected")
	}
	if _, ok := Command(nil); ok {
		t.Error("no command detected")
	}
}
