package detect

import (
	"slices"
	"testing"
)

func TestTable(t *testing.T) {
	commands, files := Table()
	if len(commands) == 0 || len(files) == 0 {
		t.Fatal("empty table")
	}
	seen := map[string]bool{}
	for _, e := range commands {
		if seen[e.Match] {
			t.Errorf("command %q listed twice", e.Match)
		}
		seen[e.Match] = true
	}
	seen = map[string]bool{}
	for _, e := range slices.Concat(commands, files) {
		if e.Match == "" || e.Image == "" || e.Runtime == "" {
			t.Errorf("incomplete entry %+v", e)
		}
		if e.Origin != OriginAgentkernel && e.Origin != OriginExtension {
			t.Errorf("entry %+v: bad origin", e)
		}
		if img, ok := RuntimeImage(e.Runtime); !ok || img != e.Image {
			t.Errorf("entry %+v: runtime gives %q, %v", e, img, ok)
		}
	}
	for _, e := range files {
		if seen[e.Match] {
			t.Errorf("project file %q listed twice", e.Match)
		}
		seen[e.Match] = true
	}

	// Table hands out copies.
	commands[0].Image = "mutated"
	if c, _ := Table(); c[0].Image == "mutated" {
		t.Error("Table shares its backing array")
	}
}

// The rows the Rust agentkernel 0.18.1 has (src/languages.rs), verbatim: a
// change here changes behaviour users of both implementations rely on.
func TestTableMatchesRust(t *testing.T) {
	rust := map[string][]string{ // image → commands
		"node:22-alpine":                   {"node", "npm", "npx", "yarn", "pnpm", "bun", "tsx", "ts-node"},
		"rust:1.85-alpine":                 {"cargo", "rustc", "rustup", "rustfmt", "clippy"},
		"golang:1.23-alpine":               {"go", "gofmt"},
		"python:3.12-alpine":               {"python", "python3", "pip", "pip3", "poetry", "uv", "pytest", "ruff"},
		"ruby:3.3-alpine":                  {"ruby", "gem", "bundle", "bundler", "rake", "rails"},
		"eclipse-temurin:21-alpine":        {"java", "javac", "mvn", "gradle", "gradlew"},
		"mcr.microsoft.com/dotnet/sdk:8.0": {"dotnet", "csc", "fsc"},
		"gcc:14-bookworm":                  {"gcc", "g++", "clang", "clang++", "make", "cmake", "cc"},
		"php:8.3-alpine":                   {"php", "composer"},
		"elixir:1.16-alpine":               {"elixir", "mix", "iex"},
		"alpine:3.20":                      {"sh", "bash", "zsh", "ash"},
		"nickblah/lua:5.4-alpine":          {"lua", "luajit", "luarocks"},
		"hashicorp/terraform:1.10":         {"terraform"},
	}
	rustFiles := []string{ // in detection order
		"package.json", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb",
		"Cargo.toml", "Cargo.lock",
		"go.mod", "go.sum",
		"pyproject.toml", "requirements.txt", "setup.py", "setup.cfg", "Pipfile", "poetry.lock", "uv.lock",
		"Gemfile", "Gemfile.lock", "*.gemspec",
		"pom.xml", "build.gradle", "build.gradle.kts", "settings.gradle",
		"*.kt",
		"*.csproj", "*.fsproj", "*.sln", "global.json",
		"Makefile", "CMakeLists.txt", "configure", "*.c", "*.cpp", "*.h",
		"composer.json", "composer.lock", "*.php",
		"mix.exs", "mix.lock",
		"*.sh",
		"*.lua", ".luacheckrc",
		"*.tf", "*.tfvars", "terraform.tfstate",
	}

	commands, files := Table()
	got := map[string][]string{}
	for _, e := range commands {
		if e.Origin == OriginAgentkernel {
			got[e.Image] = append(got[e.Image], e.Match)
		} else if rt, ok := lookupCommand(e.Match); ok && slices.Contains(rust[rt.image], e.Match) {
			t.Errorf("Rust command %q marked as extension", e.Match)
		}
	}
	for img, cmds := range rust {
		if !slices.Equal(got[img], cmds) {
			t.Errorf("%s: commands %q; Rust has %q", img, got[img], cmds)
		}
	}
	var gotFiles []string
	for _, e := range files {
		if e.Origin == OriginAgentkernel {
			gotFiles = append(gotFiles, e.Match)
		}
	}
	if !slices.Equal(gotFiles, rustFiles) {
		t.Errorf("project files %q;\nRust has %q", gotFiles, rustFiles)
	}
}

func TestRuntimeImage(t *testing.T) {
	// src/config.rs Config::docker_image in the Rust agentkernel.
	for name, img := range map[string]string{
		"python": "python:3.12-alpine", "node": "node:22-alpine", "go": "golang:1.23-alpine",
		"rust": "rust:1.85-alpine", "ruby": "ruby:3.3-alpine", "java": "eclipse-temurin:21-alpine",
		"c": "gcc:14-bookworm", "dotnet": "mcr.microsoft.com/dotnet/sdk:8.0", "base": "alpine:3.20",
	} {
		if got, ok := RuntimeImage(name); !ok || got != img {
			t.Errorf("RuntimeImage(%q) = %q, %v; want %q", name, got, ok, img)
		}
	}
	for _, name := range []string{"", "cobol", "Python", "alpine:3.20"} {
		if got, ok := RuntimeImage(name); ok {
			t.Errorf("RuntimeImage(%q) = %q; want unknown", name, got)
		}
	}
	names := RuntimeNames()
	if !slices.IsSorted(names) || !slices.Contains(names, "base") || !slices.Contains(names, "python") {
		t.Errorf("RuntimeNames() = %q", names)
	}
}
