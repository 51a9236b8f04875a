package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// commandFlags are how run and exec run their command.
type commandFlags struct {
	timeout     durationValue
	tty         bool
	interactive bool
}

func (f *commandFlags) register(cmd *cobra.Command, interactiveShort string) {
	fs := cmd.Flags()
	fs.Var(&f.timeout, "timeout", "kill the command after this long (e.g. 30s, 5m); exit code 124")
	fs.BoolVarP(&f.tty, "tty", "t", false, "run the command on a pseudo-terminal (when stdin is a terminal)")
	fs.BoolVarP(&f.interactive, "interactive", interactiveShort, false,
		"forward stdin even when it is a terminal (a pipe or file is always forwarded)")
}

func (f *commandFlags) spec(args []string) agentv1.ExecSpec {
	return agentv1.ExecSpec{Args: args, TimeoutMS: time.Duration(f.timeout).Milliseconds()}
}

func (a *app) newRunCmd() *cobra.Command {
	var sf sandboxFlags
	var cf commandFlags
	var keep bool
	cmd := &cobra.Command{
		Use:   "run [flags] [--] COMMAND [ARG...]",
		Short: "Run a command in a new sandbox that is removed afterwards",
		Long: `Run creates a sandbox, runs COMMAND in it, and removes the sandbox again
(also when interrupted). The command's exit code becomes agentkernel's.

Stdin is forwarded when it is a pipe or a file; a terminal is only read with
--interactive or --tty.`,
		Example: `  agentkernel run -- echo hello
  agentkernel run --image python:3.12-alpine -- python3 -c 'print(1)'
  agentkernel run --image auto -- pytest
  agentkernel run --mount-cwd -- make test
  echo 'print(1)' | agentkernel run -- python3
  agentkernel run -t -- bash`,
		Args: cobra.ArbitraryArgs,
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			cfg, err := sf.config(cmd, a)
			if err != nil {
				return err
			}
			if err := a.resolveAutoImage(&cfg, args); err != nil {
				return err
			}
			if len(args) == 0 && cfg.Image == sandbox.DefaultImage {
				return usagef("run: no command given (usage: agentkernel run [flags] -- COMMAND [ARG...])")
			}
			create := service.CreateRequest{Name: sf.name, Backend: sf.backend, Config: cfg}
			ctx := cmd.Context()
			mgr, err := a.manager(ctx)
			if err != nil {
				return err
			}
			if err := a.needAgent(); err != nil {
				return err
			}
			if err := a.ensureImage(ctx, mgr, cfg.Image); err != nil {
				return err
			}
			if len(args) == 0 {
				if args, err = mgr.DefaultCommand(ctx, cfg.Image); err != nil {
					return err
				}
			}
			m := a.ioFor(cf.tty, cf.interactive)
			if m.tty {
				return a.runTTY(ctx, mgr, create, cf.spec(args), m, keep, time.Duration(cf.timeout))
			}
			spec := cf.spec(args)
			m.prepare(&spec, a.getenv)
			info, st, err := mgr.Run(ctx, service.RunRequest{
				Create: create,
				Exec:   service.ExecRequest{Spec: spec, Stdin: m.stdin, Stdout: a.stdout, Stderr: a.stderr},
				Keep:   keep,
			})
			if err != nil {
				return err
			}
			if keep && info != nil {
				fmt.Fprintf(a.stderr, "agentkernel: kept sandbox %s\n", info.Name)
			}
			return commandExit(st, time.Duration(cf.timeout))
		}),
	}
	cmd.Flags().SetInterspersed(false)
	sf.register(cmd.Flags())
	cf.register(cmd, "")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the sandbox (running) afterwards instead of removing it")
	return cmd
}

// runTTY is run with a terminal: the sandbox is created and started, the
// command driven like attach, and the sandbox removed whatever happens.
func (a *app) runTTY(ctx context.Context, mgr *service.Manager, create service.CreateRequest,
	spec agentv1.ExecSpec, m ioMode, keep bool, timeout time.Duration) (err error) {
	info, err := mgr.Create(ctx, create)
	if err != nil {
		return err
	}
	ran := false
	defer func() {
		if keep && ran {
			fmt.Fprintf(a.stderr, "agentkernel: kept sandbox %s\n", info.Name)
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if rerr := mgr.Remove(cctx, info.Name); rerr != nil && err == nil {
			err = fmt.Errorf("removing sandbox %s: %w", info.Name, rerr)
		}
	}()
	if _, err := mgr.Start(ctx, info.Name); err != nil {
		return err
	}
	ran = true
	st, err := a.session(ctx, mgr, info.Name, spec, m)
	if err != nil {
		return err
	}
	return commandExit(st, timeout)
}
