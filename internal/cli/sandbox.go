package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// newSandboxCmd is `sandbox` (alias `sb`), grouping the lifecycle commands
// that also exist at the top level.
func (a *app) newSandboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "sandbox",
		Aliases: []string{"sb"},
		Short:   "Manage sandboxes (create, start, stop, remove, list, info, cp, export, network)",
		Args:    cobra.ArbitraryArgs,
		RunE:    groupRunE,
	}
	cmd.AddCommand(a.sandboxSubcommands()...)
	return cmd
}

// sandboxSubcommands builds the lifecycle commands; they are added both
// under `sandbox` and at the top level, so each call builds new ones.
func (a *app) sandboxSubcommands() []*cobra.Command {
	return []*cobra.Command{
		a.newCreateCmd(), a.newStartCmd(), a.newStopCmd(), a.newRemoveCmd(),
		a.newListCmd(), a.newInfoCmd(), a.newCpCmd(), a.newExportCmd(), a.newNetworkCmd(),
	}
}

func (a *app) newCreateCmd() *cobra.Command {
	var sf sandboxFlags
	var start bool
	cmd := &cobra.Command{
		Use:   "create [flags] [NAME]",
		Short: "Create a sandbox (and start it with --start)",
		Long: `Create records a new sandbox with the given configuration and prints its
name. It is not running until started (--start, or agentkernel start NAME).`,
		Example: `  agentkernel create dev --start
  agentkernel create --name ci -p restrictive --memory 1g --ttl 2h`,
		Args: maxArgs(1, "NAME"),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if sf.name != "" && sf.name != args[0] {
					return usagef("create: two different names given (%s and --name %s)", args[0], sf.name)
				}
				sf.name = args[0]
			}
			cfg, err := sf.config(cmd, a)
			if err != nil {
				return err
			}
			if err := a.resolveAutoImage(&cfg, nil); err != nil {
				return err
			}
			ctx := cmd.Context()
			mgr, err := a.manager(ctx)
			if err != nil {
				return err
			}
			if start {
				if err := a.needAgent(); err != nil {
					return err
				}
			}
			if err := a.ensureImage(ctx, mgr, cfg.Image); err != nil {
				return err
			}
			info, err := mgr.Create(ctx, service.CreateRequest{Name: sf.name, Backend: sf.backend, Config: cfg})
			if err != nil {
				return err
			}
			if start {
				if _, err := mgr.Start(ctx, info.Name); err != nil {
					// Nothing half-made: a sandbox that cannot start is not kept.
					cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
					defer cancel()
					if rerr := mgr.Remove(cctx, info.Name); rerr != nil {
						a.warnf("removing sandbox %s: %v", info.Name, rerr)
					}
					return err
				}
			}
			fmt.Fprintln(a.stdout, info.Name)
			return nil
		}),
	}
	sf.register(cmd.Flags())
	cmd.Flags().BoolVar(&start, "start", false, "start the sandbox too")
	return cmd
}

func (a *app) newStartCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "start NAME...",
		Short:             "Start sandboxes",
		Args:              minArgs(1, "NAME"),
		ValidArgsFunction: a.completeNames(-1),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			return a.eachSandbox(cmd, args, true, func(ctx context.Context, mgr *service.Manager, name string) error {
				_, err := mgr.Start(ctx, name)
				return err
			})
		}),
	}
}

func (a *app) newStopCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "stop NAME...",
		Short:             "Stop sandboxes, keeping their files",
		Args:              minArgs(1, "NAME"),
		ValidArgsFunction: a.completeNames(-1),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			return a.eachSandbox(cmd, args, false, func(ctx context.Context, mgr *service.Manager, name string) error {
				_, err := mgr.Stop(ctx, name)
				return err
			})
		}),
	}
}

func (a *app) newRemoveCmd() *cobra.Command {
	var force, all bool
	cmd := &cobra.Command{
		Use:               "remove [flags] NAME...",
		Aliases:           []string{"rm"},
		Short:             "Remove sandboxes (stopping them first) and everything they own",
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: a.completeNames(-1),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return usagef("remove: --all takes no names")
			case !all && len(args) == 0:
				return usagef("remove: no sandbox named (usage: agentkernel remove NAME... or --all)")
			}
			if all {
				mgr, err := a.manager(cmd.Context())
				if err != nil {
					return err
				}
				infos, err := mgr.List(cmd.Context())
				if err != nil {
					return err
				}
				for _, in := range infos {
					args = append(args, in.Name)
				}
			}
			return a.eachSandbox(cmd, args, false, func(ctx context.Context, mgr *service.Manager, name string) error {
				err := mgr.Remove(ctx, name)
				if force && isNotFound(err) {
					return nil
				}
				return err
			})
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not complain about sandboxes that do not exist")
	cmd.Flags().BoolVar(&all, "all", false, "remove every sandbox")
	return cmd
}

// eachSandbox validates every name, then runs op on each, printing the
// names it succeeded on; the errors of the others are joined.
func (a *app) eachSandbox(cmd *cobra.Command, names []string, agent bool,
	op func(context.Context, *service.Manager, string) error) error {
	for _, n := range names {
		if err := sandbox.ValidateName(n); err != nil {
			return err
		}
	}
	ctx := cmd.Context()
	mgr, err := a.manager(ctx)
	if err != nil {
		return err
	}
	if agent {
		if err := a.needAgent(); err != nil {
			return err
		}
	}
	var errs []error
	for _, n := range names {
		if err := op(ctx, mgr, n); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(a.stdout, n)
	}
	return errors.Join(errs...)
}

func (a *app) newListCmd() *cobra.Command {
	var asJSON, quiet, all bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List sandboxes",
		Args:    exactArgs(0, "no arguments"),
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			infos, err := mgr.List(cmd.Context())
			if err != nil {
				return err
			}
			if !all {
				infos = slices.DeleteFunc(infos, func(in *service.Info) bool { return in.Pooled })
			}
			switch {
			case asJSON:
				if infos == nil {
					infos = []*service.Info{} // [] rather than null
				}
				return writeJSON(a.stdout, infos)
			case quiet:
				for _, in := range infos {
					fmt.Fprintln(a.stdout, in.Name)
				}
				return nil
			}
			return writeSandboxTable(a.stdout, time.Now(), infos)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the names")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "include the warm pool's unclaimed sandboxes")
	return cmd
}

func (a *app) newInfoCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "info NAME",
		Aliases:           []string{"inspect"},
		Short:             "Show a sandbox's status and configuration",
		Args:              exactArgs(1, "NAME"),
		ValidArgsFunction: a.completeNames(1),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			mgr, err := a.managerFor(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			info, err := mgr.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, infoJSON{Info: info, NetworkNote: networkNote(info.Config)})
			}
			return writeInfo(a.stdout, time.Now(), info)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) newGCCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove expired sandboxes and clean up after dead ones",
		Args:  exactArgs(0, "no arguments"),
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			removed, err := mgr.GC(cmd.Context())
			if asJSON {
				if removed == nil {
					removed = []string{}
				}
				if jerr := writeJSON(a.stdout, map[string]any{"removed": removed}); jerr != nil && err == nil {
					err = jerr
				}
				return err
			}
			for _, n := range removed {
				fmt.Fprintf(a.stdout, "removed %s\n", n)
			}
			return err
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// completeNames completes sandbox names for the first n positional
// arguments (n < 0: all of them).
func (a *app) completeNames(n int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if n >= 0 && len(args) >= n {
			return nil, cobra.ShellCompDirectiveDefault
		}
		mgr, err := a.manager(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		infos, err := mgr.List(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []cobra.Completion
		for _, in := range infos {
			names = append(names, cobra.CompletionWithDesc(in.Name, string(in.Status)))
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// minArgs wants at least n arguments.
func minArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s: want %s", cmd.CommandPath(), names)
		}
		return nil
	}
}

// maxArgs wants at most n arguments.
func maxArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef("%s: want at most %s, got %d arguments", cmd.CommandPath(), names, len(args))
		}
		return nil
	}
}
