package detect

import (
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

// DefaultImage is what the Rust agentkernel runs when detection finds nothing.
// Image reports "not found" instead and leaves the fallback to the caller,
// which may prefer the offline pseudo-image "host".
const DefaultImage = "alpine:3.20"

// Origin values of an Entry.
const (
	// OriginAgentkernel marks a row the Rust agentkernel 0.18.1 has too, with
	// the same image: a user moving between the two gets the same result.
	OriginAgentkernel = "agentkernel"
	// OriginExtension marks a row only this implementation has. Extra
	// commands have names the Rust table lacks, so they only decide where the
	// Rust agentkernel would have found no command. An extra project file is
	// checked right after the Rust files of its runtime, so it can win over a
	// later runtime's file (go.work over requirements.txt in a directory with
	// no go.mod) — deliberately, as it is the stronger signal.
	OriginExtension = "extension"
)

// Entry is one row of a detection table.
type Entry struct {
	// Match is a command base name ("pytest"), a project file name
	// ("go.mod") or a suffix pattern ("*.csproj").
	Match string
	// Runtime names the language runtime; it is also the value
	// agentkernel.toml's [sandbox] runtime takes to select Image.
	Runtime string
	Image   string
	// Origin is OriginAgentkernel or OriginExtension.
	Origin string
}

// runtime is one language runtime: its image and what selects it. Slice order
// is detection order for project files, as in the Rust RUNTIMES array.
type runtime struct {
	name  string
	image string
	// files and commands come from the Rust table; extraFiles and
	// extraCommands are this implementation's extensions.
	files, extraFiles       []string
	commands, extraCommands []string
}

var runtimes = []runtime{
	{
		name:          "node",
		image:         "node:22-alpine",
		files:         []string{"package.json", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb"},
		extraFiles:    []string{"bun.lock"}, // bun ≥ 1.2's text lockfile
		commands:      []string{"node", "npm", "npx", "yarn", "pnpm", "bun", "tsx", "ts-node"},
		extraCommands: []string{"bunx", "corepack", "tsc", "vitest", "jest", "eslint", "prettier"},
	},
	{
		name:     "rust",
		image:    "rust:1.85-alpine",
		files:    []string{"Cargo.toml", "Cargo.lock"},
		commands: []string{"cargo", "rustc", "rustup", "rustfmt", "clippy"},
	},
	{
		name:       "go",
		image:      "golang:1.23-alpine",
		files:      []string{"go.mod", "go.sum"},
		extraFiles: []string{"go.work"}, // a workspace root need not have go.mod
		commands:   []string{"go", "gofmt"},
	},
	{
		name:          "python",
		image:         "python:3.12-alpine",
		files:         []string{"pyproject.toml", "requirements.txt", "setup.py", "setup.cfg", "Pipfile", "poetry.lock", "uv.lock"},
		commands:      []string{"python", "python3", "pip", "pip3", "poetry", "uv", "pytest", "ruff"},
		extraCommands: []string{"uvx", "pipx", "pipenv", "pdm", "hatch", "tox", "nox", "mypy", "black", "flake8", "pylint"},
	},
	{
		name:          "ruby",
		image:         "ruby:3.3-alpine",
		files:         []string{"Gemfile", "Gemfile.lock", "*.gemspec"},
		commands:      []string{"ruby", "gem", "bundle", "bundler", "rake", "rails"},
		extraCommands: []string{"irb", "rspec", "rubocop"},
	},
	{
		name:          "java",
		image:         "eclipse-temurin:21-alpine",
		files:         []string{"pom.xml", "build.gradle", "build.gradle.kts", "settings.gradle"},
		commands:      []string{"java", "javac", "mvn", "gradle", "gradlew"},
		extraCommands: []string{"mvnw", "jshell", "jar"},
	},
	{
		// Kotlin projects build with Gradle on a JDK; the Rust table has no
		// Kotlin commands.
		name:  "kotlin",
		image: "eclipse-temurin:21-alpine",
		files: []string{"*.kt"},
	},
	{
		name:     "dotnet",
		image:    "mcr.microsoft.com/dotnet/sdk:8.0",
		files:    []string{"*.csproj", "*.fsproj", "*.sln", "global.json"},
		commands: []string{"dotnet", "csc", "fsc"},
	},
	{
		name:          "c",
		image:         "gcc:14-bookworm",
		files:         []string{"Makefile", "CMakeLists.txt", "configure", "*.c", "*.cpp", "*.h"},
		extraFiles:    []string{"makefile", "GNUmakefile"}, // the other names make reads
		commands:      []string{"gcc", "g++", "clang", "clang++", "make", "cmake", "cc"},
		extraCommands: []string{"c++"},
	},
	{
		name:     "php",
		image:    "php:8.3-alpine",
		files:    []string{"composer.json", "composer.lock", "*.php"},
		commands: []string{"php", "composer"},
	},
	{
		name:     "elixir",
		image:    "elixir:1.16-alpine",
		files:    []string{"mix.exs", "mix.lock"},
		commands: []string{"elixir", "mix", "iex"},
	},
	{
		// Not in the Rust table. Placed before shell, Lua and Terraform
		// because deno.json says more about a project than a stray *.sh.
		name:          "deno",
		image:         "denoland/deno:alpine",
		extraFiles:    []string{"deno.json", "deno.jsonc"},
		extraCommands: []string{"deno"},
	},
	{
		// Shells select a runtime only weakly (see Image): a shell runs
		// whatever the project needs, so the project decides first.
		name:          "shell",
		image:         DefaultImage,
		files:         []string{"*.sh"},
		commands:      []string{"sh", "bash", "zsh", "ash"},
		extraCommands: []string{"dash"},
	},
	{
		name:     "lua",
		image:    "nickblah/lua:5.4-alpine",
		files:    []string{"*.lua", ".luacheckrc"},
		commands: []string{"lua", "luajit", "luarocks"},
	},
	{
		name:     "terraform",
		image:    "hashicorp/terraform:1.10",
		files:    []string{"*.tf", "*.tfvars", "terraform.tfstate"},
		commands: []string{"terraform"},
	},
}

// configOnlyRuntimes are [sandbox] runtime values that name no detection row.
var configOnlyRuntimes = map[string]string{
	// "base" is the Rust default runtime: plain Alpine.
	"base": DefaultImage,
}

// byCommand maps a command base name to its runtime. Built on first use,
// not at init: every CLI invocation links this package.
var byCommand = sync.OnceValue(func() map[string]*runtime {
	m := make(map[string]*runtime)
	for i := range runtimes {
		r := &runtimes[i]
		for _, c := range slices.Concat(r.commands, r.extraCommands) {
			if _, dup := m[c]; dup {
				panic("detect: command " + c + " listed twice")
			}
			m[c] = r
		}
	}
	return m
})

// versioned returns "python" or "pip" for interpreter names carrying a
// version ("python3.12", "pip3.11"), which Debian-style images and
// virtualenvs install; the Rust table matches exact names only.
func versioned(name string) (string, bool) {
	for _, base := range []string{"python", "pip"} {
		v, ok := strings.CutPrefix(name, base)
		if !ok || v == "" || v[0] == '.' || v[len(v)-1] == '.' || strings.Contains(v, "..") {
			continue
		}
		if strings.Trim(v, "0123456789.") == "" {
			return base, true
		}
	}
	return "", false
}

// lookupCommand returns the runtime a command name selects.
func lookupCommand(name string) (*runtime, bool) {
	name = filepath.Base(name)
	if r, ok := byCommand()[name]; ok {
		return r, true
	}
	if base, ok := versioned(name); ok {
		return byCommand()[base], true
	}
	return nil, false
}

// isShell reports whether r is the weak shell runtime.
func (r *runtime) isShell() bool { return r.name == "shell" }

// RuntimeImage returns the image for an agentkernel.toml [sandbox] runtime
// value. The Rust agentkernel knows base, python, node, go, rust, ruby, java,
// c and dotnet and silently gives Alpine for any other value; here every
// runtime of Table is accepted and an unknown one is reported.
func RuntimeImage(name string) (string, bool) {
	if img, ok := configOnlyRuntimes[name]; ok {
		return img, true
	}
	for _, r := range runtimes {
		if r.name == name {
			return r.image, true
		}
	}
	return "", false
}

// RuntimeNames lists the values agentkernel.toml's [sandbox] runtime accepts,
// sorted.
func RuntimeNames() []string {
	names := make([]string, 0, len(runtimes)+len(configOnlyRuntimes))
	for _, r := range runtimes {
		names = append(names, r.name)
	}
	for n := range configOnlyRuntimes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Table returns the command table and the project-file table, each in the
// order detection consults them (project files: first match wins).
// The slices are fresh copies.
func Table() (commands, projectFiles []Entry) {
	for _, r := range runtimes {
		commands = appendEntries(commands, r, r.commands, OriginAgentkernel)
		commands = appendEntries(commands, r, r.extraCommands, OriginExtension)
		projectFiles = appendEntries(projectFiles, r, r.files, OriginAgentkernel)
		projectFiles = appendEntries(projectFiles, r, r.extraFiles, OriginExtension)
	}
	return commands, projectFiles
}

func appendEntries(dst []Entry, r runtime, matches []string, origin string) []Entry {
	for _, m := range matches {
		dst = append(dst, Entry{Match: m, Runtime: r.name, Image: r.image, Origin: origin})
	}
	return dst
}
