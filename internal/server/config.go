package server

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// serveConfig is the file `agentkernel serve --config FILE` reads (TOML).
// The keys are the flags' names with underscores; api_key is agentkernel's
// name for the server's key, api_keys the same for several.
type serveConfig struct {
	Host          *string  `toml:"host"`
	Port          *int     `toml:"port"`
	APIKey        string   `toml:"api_key"`
	APIKeys       []string `toml:"api_keys"`
	APIKeyFile    *string  `toml:"api_key_file"`
	TLSCert       *string  `toml:"tls_cert"`
	TLSKey        *string  `toml:"tls_key"`
	TLSSelfSigned *bool    `toml:"tls_self_signed"`
	LogLevel      *string  `toml:"log_level"`
}

// loadServeConfig reads a server config file; an unknown key or a value of
// the wrong type is an invalid argument naming the line.
func loadServeConfig(path string) (*serveConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var c serveConfig
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var sme *toml.StrictMissingError
		if errors.As(err, &sme) {
			var keys []string
			for _, e := range sme.Errors {
				row, _ := e.Position()
				keys = append(keys, fmt.Sprintf("%s (line %d)", strings.Join(e.Key(), "."), row))
			}
			return nil, fmt.Errorf("--config %s: unknown keys %s; known: host, port, api_key, api_keys, api_key_file, tls_cert, tls_key, tls_self_signed, log_level: %w",
				path, strings.Join(keys, ", "), errdefs.ErrInvalidArgument)
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("--config %s:%d:%d: %v: %w", path, row, col, de, errdefs.ErrInvalidArgument)
		}
		return nil, fmt.Errorf("--config %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	return &c, nil
}

// apply fills what the command line left unset (set names the flags given).
func (c *serveConfig) apply(f *serveFlags, set map[string]bool) {
	str := func(flag string, dst *string, v *string) {
		if v != nil && !set[flag] {
			*dst = *v
		}
	}
	str("host", &f.host, c.Host)
	str("api-key-file", &f.apiKeyFile, c.APIKeyFile)
	str("tls-cert", &f.tlsCert, c.TLSCert)
	str("tls-key", &f.tlsKey, c.TLSKey)
	str("log-level", &f.logLevel, c.LogLevel)
	if c.Port != nil && !set["port"] {
		f.port = *c.Port
	}
	if c.TLSSelfSigned != nil && !set["tls-self-signed"] {
		f.tlsSelfSigned = *c.TLSSelfSigned
	}
	// The file's TLS source gives way to the command line's other one.
	if set["tls-self-signed"] && !set["tls-cert"] && !set["tls-key"] {
		f.tlsCert, f.tlsKey = "", ""
	}
	if (set["tls-cert"] || set["tls-key"]) && !set["tls-self-signed"] {
		f.tlsSelfSigned = false
	}
	if !set["api-key"] {
		if c.APIKey != "" {
			f.apiKeys = append(f.apiKeys, c.APIKey)
		}
		f.apiKeys = append(f.apiKeys, c.APIKeys...)
	}
}
