package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

func (a *app) newAttachCmd() *cobra.Command {
	var env []string
	var workdir, user string
	cmd := &cobra.Command{
		Use:   "attach [flags] NAME [-- COMMAND [ARG...]]",
		Short: "Open an interactive shell (or COMMAND) on a terminal in a running sandbox",
		Long: `Attach runs an interactive shell - bash if the sandbox has it, else sh - or
COMMAND on a pseudo-terminal in the running sandbox NAME. The local terminal is
put in raw mode and restored on exit; window-size changes follow. The exit code
of the shell becomes agentkernel's.`,
		Example: `  agentkernel attach dev
  agentkernel attach dev -- python3`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: a.completeNames(1),
		RunE: a.wrapInteractive(func(cmd *cobra.Command, args []string) error {
			pos, command, err := splitCommand(cmd, args, 1)
			if err != nil {
				return err
			}
			name := pos[0]
			if err := sandbox.ValidateName(name); err != nil {
				return err
			}
			if workdir != "" && !strings.HasPrefix(workdir, "/") {
				return usagef("workdir %q must be an absolute path", workdir)
			}
			spec := agentv1.ExecSpec{Dir: workdir, User: user}
			if spec.Env, err = parseEnv(env, a.getenv); err != nil {
				return err
			}
			ctx := cmd.Context()
			mgr, err := a.manager(ctx)
			if err != nil {
				return err
			}
			if len(command) == 0 {
				command = defaultShell(ctx, mgr, name)
			}
			spec.Args = command
			st, err := a.session(ctx, mgr, name, spec, a.ioFor(true, true))
			if err != nil {
				return err
			}
			return commandExit(st, 0)
		}),
	}
	cmd.Flags().SetInterspersed(false)
	fs := cmd.Flags()
	fs.StringArrayVarP(&env, "env", "e", nil, "set an environment variable: KEY=VALUE, or KEY to pass it from here (repeatable)")
	fs.StringVarP(&workdir, "workdir", "w", "", "working directory (absolute; default the sandbox's)")
	fs.StringVarP(&user, "user", "u", "", "user to run as (name, uid or uid:gid; default the sandbox's)")
	return cmd
}

// defaultShell is bash where the sandbox has it, else sh.
func defaultShell(ctx context.Context, mgr *service.Manager, name string) []string {
	if fi, err := mgr.Stat(ctx, name, "/bin/bash"); err == nil && fi.Type != agentv1.TypeDir {
		return []string{"/bin/bash"}
	}
	return []string{"/bin/sh"}
}
