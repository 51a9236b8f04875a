package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/agentkernel-go/agentkernel/internal/plugin"
)

func (a *app) newPluginCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Set up coding agents (Claude Code, Codex, Gemini CLI, OpenCode) to use agentkernel over MCP",
		Args:  exactArgs(0, "a subcommand"),
	}
	var o plugin.Options
	install := &cobra.Command{
		Use:   "install claude|codex|gemini|opencode|mcp|all",
		Short: "Add agentkernel's MCP server to an agent's config file (idempotent)",
		Long: `install adds an "agentkernel" MCP server (agentkernel mcp-server) to the config
file the agent reads, keeping everything else in it:

  claude    .mcp.json               (--global: ~/.claude.json)
  codex     .codex/config.toml      (--global: ~/.codex/config.toml)
  gemini    .gemini/settings.json   (--global: ~/.gemini/settings.json)
  opencode  opencode.json           (--global: ~/.config/opencode/opencode.json)
  mcp       .mcp.json               (--global: ~/.mcp.json)

Paths are relative to the current directory. An existing agentkernel entry that
differs is kept unless --force.`,
		Example: "  agentkernel plugin install claude\n  agentkernel plugin install all --dry-run",
		Args:    exactArgs(1, "a target"),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			targets, err := plugin.Lookup(args[0])
			if err != nil {
				return err
			}
			if err := a.pluginOptions(&o); err != nil {
				return err
			}
			for _, t := range targets {
				r, err := plugin.Install(t, o)
				if err != nil {
					return err
				}
				switch {
				case o.DryRun && r.Content != nil:
					fmt.Fprintf(a.stdout, "would write %s (%s):\n%s\n", r.Path, r.Action, r.Content)
				case r.Action == "differs":
					fmt.Fprintf(a.stdout, "%-8s %s: has a different agentkernel entry, kept (--force replaces it)\n", t.Name, r.Path)
				default:
					fmt.Fprintf(a.stdout, "%-8s %s: %s\n", t.Name, r.Path, r.Action)
				}
			}
			return nil
		}),
	}
	fs := install.Flags()
	fs.BoolVarP(&o.Global, "global", "g", false, "write the user-level config in your home directory")
	fs.BoolVarP(&o.Force, "force", "f", false, "replace an agentkernel entry that differs")
	fs.BoolVar(&o.DryRun, "dry-run", false, "show what would be written, write nothing")

	list := &cobra.Command{
		Use:   "list",
		Short: "Show the targets and whether agentkernel is in their config",
		Args:  exactArgs(0, "no arguments"),
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			var lo plugin.Options
			if err := a.pluginOptions(&lo); err != nil {
				return err
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "TARGET\tDESCRIPTION\tPROJECT\tGLOBAL")
			for _, t := range plugin.Targets() {
				g := lo
				g.Global = true
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Description, status(plugin.Installed(t, lo)), status(plugin.Installed(t, g)))
			}
			return tw.Flush()
		}),
	}
	cmd.AddCommand(install, list)
	return cmd
}

func status(installed bool) string {
	if installed {
		return "installed"
	}
	return "-"
}

// pluginOptions fills the directories and the command agents should run:
// "agentkernel" when that is this binary on $PATH, else this binary's path.
func (a *app) pluginOptions(o *plugin.Options) error {
	var err error
	if o.Dir, err = os.Getwd(); err != nil {
		return err
	}
	if o.Home = a.getenv("HOME"); o.Home == "" {
		if o.Home, err = os.UserHomeDir(); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	self, _ = filepath.EvalSymlinks(self)
	o.Command = self
	if p, err := exec.LookPath("agentkernel"); err == nil {
		if resolved, _ := filepath.EvalSymlinks(p); resolved == self {
			o.Command = "agentkernel"
		}
	}
	return nil
}
