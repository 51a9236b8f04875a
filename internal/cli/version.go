package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
)

// Set by the build:
//
//	-ldflags "-X github.com/agentkernel-go/agentkernel/internal/cli.version=v0.1.0
//	          -X github.com/agentkernel-go/agentkernel/internal/cli.commit=abcdef0"
var (
	version = "dev"
	commit  = ""
)

// versionInfo is `version --json`.
type versionInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	Protocol string `json:"protocol"`
}

func currentVersion() versionInfo {
	return versionInfo{
		Version:  version,
		Commit:   buildCommit(),
		Go:       runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Protocol: agentv1.ProtocolVersion,
	}
}

// buildCommit is the commit set by the build, else the one Go recorded.
func buildCommit() string {
	if commit != "" {
		return commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// versionString is what --version prints after the program name.
func versionString() string {
	v := currentVersion()
	return fmt.Sprintf("%s (commit %s, %s, agent protocol v%s)", v.Version, v.Commit, v.Go, v.Protocol)
}

func (a *app) newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print version information",
		Args:  exactArgs(0, "no arguments"),
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			v := currentVersion()
			if asJSON {
				return writeJSON(a.stdout, v)
			}
			tw := newTable(a.stdout)
			fmt.Fprintf(tw, "agentkernel\t%s\n", v.Version)
			fmt.Fprintf(tw, "commit:\t%s\n", v.Commit)
			fmt.Fprintf(tw, "go:\t%s %s\n", v.Go, v.Platform)
			fmt.Fprintf(tw, "agent protocol:\tv%s\n", v.Protocol)
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
