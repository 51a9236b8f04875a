package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"
)

// newNetworkCmd is `sandbox network NAME`: a sandbox's egress rules, shown
// or changed while it runs.
func (a *app) newNetworkCmd() *cobra.Command {
	var ef egressFlags
	var replace, asJSON bool
	var preset string
	cmd := &cobra.Command{
		Use:   "network [flags] NAME",
		Short: "Show or change a sandbox's egress rules (also while it runs)",
		Long: `Network shows a sandbox's egress rules, or changes them: the rules given
are added to the current ones, or replace them with --replace. A running
sandbox's new connections follow the new rules at once; established ones
are not cut. Refused connections are in the sandbox's audit log.`,
		Example: `  agentkernel sandbox network dev
  agentkernel sandbox network dev --allow-domain '*.pypi.org' --allow-domain files.pythonhosted.org
  agentkernel sandbox network dev --replace --allowlist-only --allow-domain api.github.com
  agentkernel sandbox network dev --network-preset claude`,
		Args: exactArgs(1, "NAME"),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			mgr, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			rules := ef.rules()
			if preset != "" {
				p, err := netpolicy.Preset(preset)
				if err != nil {
					return err
				}
				rules = p.Merge(rules)
			}
			changed := replace || !rules.IsZero()
			info, err := mgr.Get(cmd.Context(), args[0])
			if err == nil && changed {
				info, err = mgr.SetEgress(cmd.Context(), args[0], rules, !replace)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, info.Config.Egress)
			}
			return writeRules(a, info.Config.Egress)
		}),
	}
	ef.register(cmd.Flags())
	cmd.Flags().StringVar(&preset, "network-preset", "", "add an agent's egress rules: "+strings.Join(netpolicy.PresetNames(), ", "))
	cmd.Flags().BoolVar(&replace, "replace", false, "replace the rules instead of adding to them")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rules as JSON")
	return cmd
}

func writeRules(a *app, r netpolicy.Rules) error {
	tw := newTable(a.stdout)
	mode := "everything but the built-in refusals and denied rules"
	if r.AllowlistOnly {
		mode = "allowed domains and networks only"
	}
	fmt.Fprintf(tw, "reachable:\t%s\n", mode)
	for _, row := range []struct {
		k string
		v []string
	}{
		{"allowed domains", r.AllowDomains}, {"denied domains", r.DenyDomains},
		{"allowed networks", r.AllowCIDRs}, {"denied networks", r.DenyCIDRs},
		{"allowed ports", r.AllowPorts}, {"denied ports", r.DenyPorts},
	} {
		if len(row.v) > 0 {
			fmt.Fprintf(tw, "%s:\t%s\n", row.k, strings.Join(row.v, ", "))
		}
	}
	fmt.Fprintf(tw, "always refused:\tthe host, loopback, link-local, cloud metadata; private networks unless allowed\n")
	return tw.Flush()
}
