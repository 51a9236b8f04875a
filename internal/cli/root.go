package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentkernel-go/agentkernel/internal/image"
	"github.com/agentkernel-go/agentkernel/internal/service"
	"github.com/agentkernel-go/agentkernel/internal/setup"
)

// Main runs the CLI with args (without the program name) and returns the
// process exit code.
func Main(args []string) int {
	return newApp(os.Stdin, os.Stdout, os.Stderr).main(context.Background(), args)
}

// app is one invocation of the CLI: its streams, environment and global
// flags, and the manager built lazily for the commands that need one.
type app struct {
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	getenv  func(string) string
	environ func() []string

	// Global flags.
	root     string
	logLevel string

	// imageOpts configure the image store; pull flags fill them.
	imageOpts image.Options

	logger   *slog.Logger
	mgr      *service.Manager
	agentErr error // why the agent binary was not found, if it was not
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{
		stdin: stdin, stdout: stdout, stderr: stderr,
		getenv: os.Getenv, environ: os.Environ,
	}
}

func (a *app) main(ctx context.Context, args []string) int {
	if args == nil {
		args = []string{} // cobra reads os.Args for nil
	}
	cmd := a.newRootCmd(args)
	cmd.SetArgs(args)
	cmd.SetIn(a.stdin)
	cmd.SetOut(a.stdout)
	cmd.SetErr(a.stderr)
	_, err := cmd.ExecuteContextC(service.WithVia(ctx, "cli"))
	if a.mgr != nil {
		a.mgr.Close()
	}
	return a.exit(err)
}

// commandOf returns the command name in args: the first argument after
// the global flags, "" if there is none.
func commandOf(args []string) string {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--root" || a == "--log-level":
			i++ // its value
		case strings.HasPrefix(a, "--root=") || strings.HasPrefix(a, "--log-level="):
		case strings.HasPrefix(a, "-"):
			return "" // help, version, or a usage error: the whole tree answers
		default:
			return a
		}
	}
	return ""
}

// newRootCmd builds the command tree for args: the whole tree, or only
// the hot command args name.
func (a *app) newRootCmd(args []string) *cobra.Command {
	root := &cobra.Command{
		Use:   "agentkernel",
		Short: "Run AI coding agents' code in sandboxes",
		Long: `agentkernel runs commands - or whole AI coding agents - inside sandboxes
they cannot escape: Linux namespaces natively, microVMs where the host allows.

  agentkernel run -- echo hello            one command in a throwaway sandbox
  agentkernel create dev --start           a sandbox that stays
  agentkernel exec dev -- make test        run commands in it
  agentkernel attach dev                   an interactive shell
  agentkernel doctor                       which backends work here, and why`,
		Version:           versionString(),
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.setup() },
	}
	root.SetVersionTemplate("agentkernel {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{msg: err.Error()} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.root, "root", "", "data root (default $AGENTKERNEL_ROOT, else $XDG_DATA_HOME/agentkernel, else ~/.local/share/agentkernel)")
	pf.StringVar(&a.logLevel, "log-level", "", "log level: debug, info, warn or error (default $AGENTKERNEL_LOG_LEVEL, else warn)")

	root.AddGroup(
		&cobra.Group{ID: "run", Title: "Running commands:"},
		&cobra.Group{ID: "sandbox", Title: "Managing sandboxes:"},
		&cobra.Group{ID: "host", Title: "This host:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	// run and exec are built alone when they are the command asked for:
	// building the whole tree (every command's flags, ≈0.3 ms) costs
	// more than they can afford (see BENCHMARKS.md, Startup).
	switch commandOf(args) {
	case "run":
		add("run", a.newRunCmd())
		return root
	case "exec":
		add("run", a.newExecCmd())
		return root
	}
	add("run", a.newRunCmd(), a.newExecCmd(), a.newAttachCmd(),
		a.newPsCmd(), a.newLogsCmd(), a.newKillCmd())
	add("sandbox", a.newSandboxCmd())
	add("sandbox", a.sandboxSubcommands()...)
	add("sandbox", a.newImageCmd())
	add("host", a.newServeCmd(), a.newMCPServerCmd(), a.newPluginCmd(),
		a.newGCCmd(), a.newPoolCmd(), a.newDaemonCmd(), a.newDoctorCmd(), a.newSetupCmd(), a.newVersionCmd())
	root.SetHelpCommandGroupID("host")
	root.SetCompletionCommandGroupID("host")
	return root
}

// setup resolves the global flags; it runs before every command.
func (a *app) setup() error {
	if a.root == "" {
		dir, err := setup.DefaultRoot(a.getenv)
		if err != nil {
			return err
		}
		a.root = dir
	}
	if !filepath.IsAbs(a.root) {
		abs, err := filepath.Abs(a.root)
		if err != nil {
			return fmt.Errorf("data root %s: %w", a.root, err)
		}
		a.root = abs
	}
	level := a.logLevel
	if level == "" {
		level = a.getenv("AGENTKERNEL_LOG_LEVEL")
	}
	lvl, err := setup.ParseLogLevel(level)
	if err != nil {
		return err
	}
	a.logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: lvl}))
	return nil
}

// wrap marks errors as coming from a command's own work, so the exit edge
// can tell them apart from cobra's parse errors (which are usage errors).
// The command runs under a context cancelled by SIGINT, SIGTERM or SIGHUP;
// if one arrived, the exit code says so.
func (a *app) wrap(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx, received, stop := cancelOnSignal(cmd.Context())
		defer stop()
		cmd.SetContext(ctx)
		err := fn(cmd, args)
		if sig := received(); sig != nil {
			return &runError{err: interrupted(sig)}
		}
		if err != nil {
			return &runError{err: err}
		}
		return nil
	}
}

// wrapInteractive is wrap for commands that forward signals to a sandbox
// process themselves instead of cancelling.
func (a *app) wrapInteractive(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return &runError{err: err}
		}
		return nil
	}
}

// warnf prints a warning line on stderr.
func (a *app) warnf(format string, args ...any) {
	fmt.Fprintf(a.stderr, "agentkernel: warning: "+format+"\n", args...)
}

// groupRunE is the RunE of a command that only groups subcommands: alone it
// prints help, with an unknown subcommand it is a usage error.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
}
