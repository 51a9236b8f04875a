package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newDaemonCmd is `daemon`, agentkernel's name for its background
// processes: here the lingering pool maintainer and the network daemon.
// Both start by themselves when needed; this shows and stops them.
func (a *app) newDaemonCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Show or stop the background processes (pool maintainer, network daemon)",
		Args:  exactArgs(0, "a subcommand"),
		RunE:  groupRunE,
	}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show which background processes run",
		Args:  exactArgs(0, "no arguments"),
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			st, err := mgr.Daemons(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, st)
			}
			running := map[bool]string{true: "running", false: "not running"}
			tw := newTable(a.stdout)
			fmt.Fprintf(tw, "pool maintainer:\t%s\n", running[st.PoolMaintainer])
			fmt.Fprintf(tw, "network daemon:\t%s\n", running[st.Network])
			if st.Network {
				fmt.Fprintf(tw, "networked sandboxes:\t%d %v\n", len(st.Networked), st.Networked)
			}
			return tw.Flush()
		}),
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	stop := &cobra.Command{
		Use:   "stop",
		Short: "Stop the background processes (the network daemon only once no sandbox uses it)",
		Args:  exactArgs(0, "no arguments"),
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			return mgr.StopDaemons(cmd.Context())
		}),
	}
	cmd.AddCommand(status, stop)
	return cmd
}
