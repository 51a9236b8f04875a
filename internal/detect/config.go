package detect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/pelletier/go-toml/v2"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
)

// ConfigFile is the name of the project configuration file, as in the Rust
// agentkernel.
const ConfigFile = "agentkernel.toml"

// maxConfigSize bounds what is read from a project's files: a configuration
// or Procfile larger than this is a mistake or an attack, not a config.
const maxConfigSize = 1 << 20

// Config is the part of agentkernel.toml this project reads: [sandbox] to
// choose an image, [security.domains] and [network] for egress rules.
// Every other table and key ([agent], [resources], [build], ...) is
// ignored, so a file written for the Rust agentkernel parses.
type Config struct {
	Sandbox  SandboxConfig  `toml:"sandbox"`
	Security SecurityConfig `toml:"security"`
	Network  NetworkConfig  `toml:"network"`
}

// SecurityConfig is the part of [security] read here.
type SecurityConfig struct {
	Domains DomainsConfig `toml:"domains"`
}

// DomainsConfig is [security.domains], with the Rust agentkernel's keys.
type DomainsConfig struct {
	Allow         []string `toml:"allow"`
	Block         []string `toml:"block"`
	AllowlistOnly bool     `toml:"allowlist_only"`
}

// NetworkConfig is [network]: the egress rules that are not about domains,
// and an agent preset.
type NetworkConfig struct {
	AllowCIDRs []string `toml:"allow_cidrs"`
	DenyCIDRs  []string `toml:"deny_cidrs"`
	AllowPorts []string `toml:"allow_ports"`
	DenyPorts  []string `toml:"deny_ports"`
	// Preset is an agent preset: claude, codex, gemini.
	Preset string `toml:"preset"`
}

// Egress returns the file's egress rules and preset (nil config: none).
func (c *Config) Egress() (netpolicy.Rules, string) {
	if c == nil {
		return netpolicy.Rules{}, ""
	}
	d, n := c.Security.Domains, c.Network
	return netpolicy.Rules{
		AllowDomains: d.Allow, DenyDomains: d.Block, AllowlistOnly: d.AllowlistOnly,
		AllowCIDRs: n.AllowCIDRs, DenyCIDRs: n.DenyCIDRs, AllowPorts: n.AllowPorts, DenyPorts: n.DenyPorts,
	}, n.Preset
}

// SandboxConfig is agentkernel.toml's [sandbox] table. The key names are the
// Rust agentkernel's.
type SandboxConfig struct {
	// Name is the sandbox name. The Rust agentkernel requires it; image
	// detection does not need it.
	Name string `toml:"name"`
	// Runtime is a shorthand (python, node, go, ...; see RuntimeNames) for
	// that runtime's image. The Rust default, "base", is plain Alpine.
	Runtime string `toml:"runtime"`
	// BaseImage is an explicit image reference; it wins over Runtime.
	BaseImage string `toml:"base_image"`
}

// LoadConfig reads dir's agentkernel.toml. It returns nil and no error when
// the file does not exist. A file that is not valid TOML, has a key of the
// wrong type, names an unknown runtime or an unusable base_image yields an
// error wrapping errdefs.ErrInvalidArgument that names the file and, for
// syntax errors, the line and column.
func LoadConfig(dir string) (*Config, error) {
	path := filepath.Join(dir, ConfigFile)
	data, err := readSmallFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses the contents of an agentkernel.toml; errors are as for
// LoadConfig, without the file name.
func ParseConfig(data []byte) (*Config, error) {
	var cfg Config
	if err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			msg := de.Error()
			if key := de.Key(); len(key) > 0 {
				// A type mismatch; the decoder's message names Go types,
				// which mean nothing to the file's author.
				want := "a string"
				if len(key) == 1 {
					want = "a table"
				}
				msg = fmt.Sprintf("%s must be %s", strings.Join(key, "."), want)
			}
			return nil, fmt.Errorf("line %d, column %d: %s: %w", row, col, msg, errdefs.ErrInvalidArgument)
		}
		return nil, fmt.Errorf("%s: %w", err.Error(), errdefs.ErrInvalidArgument)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rules, preset := cfg.Egress()
	if _, err := netpolicy.Compile(rules); err != nil {
		return nil, err
	}
	if preset != "" {
		if _, err := netpolicy.Preset(preset); err != nil {
			return nil, fmt.Errorf("network.preset: %w", err)
		}
	}
	return &cfg, nil
}

func (c *Config) validate() error {
	s := &c.Sandbox
	if s.Runtime != "" {
		if _, ok := RuntimeImage(s.Runtime); !ok {
			return fmt.Errorf("sandbox.runtime %q is not one of %s: %w",
				s.Runtime, strings.Join(RuntimeNames(), ", "), errdefs.ErrInvalidArgument)
		}
	}
	if s.BaseImage != "" {
		if i := strings.IndexFunc(s.BaseImage, func(r rune) bool {
			return unicode.IsSpace(r) || unicode.IsControl(r)
		}); i >= 0 {
			return fmt.Errorf("sandbox.base_image %q contains a blank or control character: %w",
				s.BaseImage, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// Image returns the image the configuration chooses: [sandbox] base_image,
// else the image of [sandbox] runtime. ok is false when the file sets
// neither (the Rust agentkernel then runs Alpine; here detection goes on to
// the project files, which know better).
func (c *Config) Image() (Result, bool) {
	if c == nil {
		return Result{}, false
	}
	if c.Sandbox.BaseImage != "" {
		return Result{Image: c.Sandbox.BaseImage, Reason: ConfigFile + " sandbox.base_image"}, true
	}
	if c.Sandbox.Runtime != "" {
		if img, ok := RuntimeImage(c.Sandbox.Runtime); ok {
			return Result{Image: img, Reason: fmt.Sprintf("%s sandbox.runtime %q", ConfigFile, c.Sandbox.Runtime)}, true
		}
	}
	return Result{}, false
}

// readSmallFile reads a project file of at most maxConfigSize bytes.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", path, maxConfigSize, errdefs.ErrInvalidArgument)
	}
	return data, nil
}
