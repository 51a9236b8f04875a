package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

func (a *app) newExecCmd() *cobra.Command {
	var cf commandFlags
	var env []string
	var workdir, user string
	var sudo, detach bool
	cmd := &cobra.Command{
		Use:   "exec [flags] NAME [--] COMMAND [ARG...]",
		Short: "Run a command in a running sandbox",
		Long: `Exec runs COMMAND in the running sandbox NAME and passes its exit code
through. Flags go before NAME, or after it when "--" ends them.

Stdin is forwarded when it is a pipe or a file; a terminal is only read with
-i or -t. With -d the command runs detached: its id is printed, and ps, logs
and kill manage it.`,
		Example: `  agentkernel exec dev -- make test
  agentkernel exec -t dev -- bash
  agentkernel exec dev -e DEBUG=1 -w /workspace -- ./run.sh
  agentkernel exec -d dev -- python3 -m http.server`,
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
			if len(command) == 0 {
				return usagef("exec: no command given (usage: agentkernel exec [flags] NAME -- COMMAND [ARG...])")
			}
			if sudo && user != "" {
				return usagef("exec: --sudo and --user contradict each other")
			}
			if detach && (cf.tty || cf.interactive) {
				return usagef("exec: --detach cannot be combined with --tty or --interactive")
			}
			if workdir != "" && !strings.HasPrefix(workdir, "/") {
				return usagef("workdir %q must be an absolute path", workdir)
			}
			spec := cf.spec(command)
			if spec.Env, err = parseEnv(env, a.getenv); err != nil {
				return err
			}
			spec.Dir, spec.User = workdir, user
			if sudo {
				spec.User = "root"
			}
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			if detach {
				p, err := mgr.StartProcess(cmd.Context(), name, spec)
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, p.ID)
				return nil
			}
			st, err := a.session(cmd.Context(), mgr, name, spec, a.ioFor(cf.tty, cf.interactive))
			if err != nil {
				return err
			}
			return commandExit(st, time.Duration(cf.timeout))
		}),
	}
	cmd.Flags().SetInterspersed(false)
	fs := cmd.Flags()
	fs.StringArrayVarP(&env, "env", "e", nil, "set an environment variable: KEY=VALUE, or KEY to pass it from here (repeatable)")
	fs.StringVarP(&workdir, "workdir", "w", "", "working directory (absolute; default the sandbox's)")
	fs.StringVarP(&user, "user", "u", "", "user to run as (name, uid or uid:gid; default the sandbox's)")
	fs.BoolVar(&sudo, "sudo", false, "run as root")
	fs.BoolVarP(&detach, "detach", "d", false, "run in the background and print the process id")
	cf.register(cmd, "i")
	return cmd
}

func (a *app) newPsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "ps NAME",
		Short:             "List a sandbox's detached processes (exec -d)",
		Args:              exactArgs(1, "NAME"),
		ValidArgsFunction: a.completeNames(1),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			mgr, err := a.managerFor(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			procs, err := mgr.Processes(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				if procs == nil {
					procs = []agentv1.ProcessInfo{} // [] rather than null
				}
				return writeJSON(a.stdout, procs)
			}
			return writeProcessTable(a.stdout, time.Now(), procs)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) newLogsCmd() *cobra.Command {
	var stderr bool
	cmd := &cobra.Command{
		Use:               "logs NAME ID",
		Short:             "Print a detached process's output so far",
		Args:              exactArgs(2, "NAME ID"),
		ValidArgsFunction: a.completeNames(1),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			stream := "stdout"
			if stderr {
				stream = "stderr"
			}
			mgr, err := a.managerFor(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			data, truncated, err := mgr.ProcessLogs(cmd.Context(), args[0], args[1], stream)
			if err != nil {
				return err
			}
			if truncated > 0 {
				a.warnf("the first %d bytes of %s were dropped (the log keeps only the most recent output)", truncated, stream)
			}
			_, err = a.stdout.Write(data)
			return err
		}),
	}
	cmd.Flags().BoolVar(&stderr, "stderr", false, "print stderr instead of stdout")
	return cmd
}

func (a *app) newKillCmd() *cobra.Command {
	var sigName string
	cmd := &cobra.Command{
		Use:               "kill NAME ID",
		Short:             "Signal a detached process (default SIGTERM)",
		Args:              exactArgs(2, "NAME ID"),
		ValidArgsFunction: a.completeNames(1),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			sig, err := parseSignal(sigName)
			if err != nil {
				return err
			}
			mgr, err := a.managerFor(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_, err = mgr.KillProcess(cmd.Context(), args[0], args[1], sig)
			return err
		}),
	}
	cmd.Flags().StringVarP(&sigName, "signal", "s", "TERM", "signal name or number (TERM, KILL, INT, HUP, 9, ...)")
	return cmd
}

// parseSignal reads a signal as a number or a name with or without "SIG".
func parseSignal(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, usagef("signal %d out of range 1..64", n)
		}
		return n, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return int(sig), nil
	}
	return 0, usagef("unknown signal %q", s)
}

// exactArgs is cobra.ExactArgs with a message naming the arguments.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s: want %s, got %d argument(s)", cmd.CommandPath(), names, len(args))
		}
		return nil
	}
}
