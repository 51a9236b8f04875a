package detect

import (
	"errors"
	"strings"
	"testing"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// A configuration written for the Rust agentkernel (its examples/ and README)
// parses: every table this package does not use is ignored.
const rustExample = `# Python App Example
[sandbox]
name = "python-app"
base_image = "python:3.12-alpine"

[agent]
preferred = "claude"
compatibility_mode = "claude"

[resources]
vcpus = 1
memory_mb = 512

[security]
profile = "restrictive"
network = false

[security.domains]
allow = ["api.anthropic.com"]

[build]
dockerfile = "./Dockerfile.dev"

[build.args]
PYTHON_VERSION = "3.12"

[[files]]
source = "./config.json"
dest = "/app/config.json"
`

func TestParseConfigRustExample(t *testing.T) {
	cfg, err := ParseConfig([]byte(rustExample))
	if err != nil {
		t.Fatal(err)
	}
	want := SandboxConfig{Name: "python-app", BaseImage: "python:3.12-alpine"}
	if cfg.Sandbox != want {
		t.Errorf("Sandbox = %+v; want %+v", cfg.Sandbox, want)
	}
	if r, ok := cfg.Image(); !ok || r.Image != "python:3.12-alpine" || r.Reason != "agentkernel.toml sandbox.base_image" {
		t.Errorf("Image() = %+v, %v", r, ok)
	}
}

func TestLoadConfig(t *testing.T) {
	t.Run("absent", func(t *testing.T) {
		cfg, err := LoadConfig(t.TempDir())
		if cfg != nil || err != nil {
			t.Errorf("got %+v, %v; want nil, nil", cfg, err)
		}
		if _, ok := cfg.Image(); ok {
			t.Error("nil Config chose an image")
		}
	})
	t.Run("present", func(t *testing.T) {
		dir := project(t, map[string]string{ConfigFile: "[sandbox]\nruntime = \"rust\"\n"})
		cfg, err := LoadConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := cfg.Image(); !ok || r.Image != "rust:1.85-alpine" {
			t.Errorf("Image() = %+v, %v", r, ok)
		}
	})
	t.Run("error names the file", func(t *testing.T) {
		dir := project(t, map[string]string{ConfigFile: "[sandbox]\nbase_image = 3\n"})
		_, err := LoadConfig(dir)
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("got %v; want ErrInvalidArgument", err)
		}
		for _, s := range []string{dir, ConfigFile, "line 2, column 14", "sandbox.base_image must be a string"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
	})
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		toml    string
		image   string // "" = no image chosen
		wantErr string // "" = no error
	}{
		{"empty file", "", "", ""},
		{"no sandbox table", "[resources]\nvcpus = 2\n", "", ""},
		{"name only", "[sandbox]\nname = \"x\"\n", "", ""},
		{"every Rust runtime: python", "[sandbox]\nruntime = \"python\"", "python:3.12-alpine", ""},
		{"every Rust runtime: node", "[sandbox]\nruntime = \"node\"", "node:22-alpine", ""},
		{"every Rust runtime: go", "[sandbox]\nruntime = \"go\"", "golang:1.23-alpine", ""},
		{"every Rust runtime: rust", "[sandbox]\nruntime = \"rust\"", "rust:1.85-alpine", ""},
		{"every Rust runtime: ruby", "[sandbox]\nruntime = \"ruby\"", "ruby:3.3-alpine", ""},
		{"every Rust runtime: java", "[sandbox]\nruntime = \"java\"", "eclipse-temurin:21-alpine", ""},
		{"every Rust runtime: c", "[sandbox]\nruntime = \"c\"", "gcc:14-bookworm", ""},
		{"every Rust runtime: dotnet", "[sandbox]\nruntime = \"dotnet\"", "mcr.microsoft.com/dotnet/sdk:8.0", ""},
		{"every Rust runtime: base", "[sandbox]\nruntime = \"base\"", "alpine:3.20", ""},
		{"extension runtime", "[sandbox]\nruntime = \"php\"", "php:8.3-alpine", ""},
		{"dotted keys", "sandbox.base_image = \"busybox:1.36\"", "busybox:1.36", ""},
		{"digest reference", "[sandbox]\nbase_image = \"alpine@sha256:" + strings.Repeat("a", 64) + "\"", "alpine@sha256:" + strings.Repeat("a", 64), ""},
		{"syntax error", "[sandbox]\nname = \"x\n", "", "line 2"},
		{"duplicate key", "[sandbox]\nname = \"a\"\nname = \"b\"\n", "", "line 3"},
		{"sandbox is a string", "sandbox = \"python\"", "", "sandbox must be a table"},
		{"runtime is an array", "[sandbox]\nruntime = [\"go\"]", "", "sandbox.runtime must be a string"},
		{"unknown runtime", "[sandbox]\nruntime = \"cobol\"", "", `sandbox.runtime "cobol" is not one of`},
		{"runtime is case-sensitive", "[sandbox]\nruntime = \"Python\"", "", `"Python"`},
		{"newline in base_image", "[sandbox]\nbase_image = \"a\\nb\"", "", "sandbox.base_image"},
		{"space in base_image", "[sandbox]\nbase_image = \" alpine\"", "", "blank or control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tc.toml))
			if tc.wantErr != "" {
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v; want ErrInvalidArgument mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r, ok := cfg.Image()
			if got := map[bool]string{true: r.Image}[ok]; got != tc.image {
				t.Errorf("Image() = %+v, %v; want %q", r, ok, tc.image)
			}
		})
	}
}
