package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns a writer aligning tab-separated columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
}

// ago formats how long ago t was, coarsely ("12s ago", "3m ago", "5d ago").
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// writeSandboxTable prints sandboxes as a table.
func writeSandboxTable(w io.Writer, now time.Time, infos []*service.Info) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tSTATUS\tBACKEND\tIMAGE\tCREATED\tPORTS")
	for _, in := range infos {
		ports := make([]string, len(in.Ports))
		for i, p := range in.Ports {
			ports[i] = fmt.Sprintf("127.0.0.1:%d->%d/%s", p.HostPort, p.ContainerPort, p.Protocol)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, statusText(in), orDash(string(in.Backend)),
			orDash(in.Config.Image), ago(now, in.CreatedAt), orDash(strings.Join(ports, ",")))
	}
	return tw.Flush()
}

// statusText is a sandbox's status for people.
func statusText(in *service.Info) string {
	if in.Crashed {
		return string(in.Status) + " (crashed)"
	}
	return string(in.Status)
}

// infoJSON is `info --json`: the sandbox as the manager describes it, plus
// the explanation of its network mode.
type infoJSON struct {
	*service.Info
	NetworkNote string `json:"network_note,omitempty"`
}

// networkNote explains a sandbox's network mode.
func networkNote(cfg sandbox.Config) string {
	if cfg.Network != sandbox.NetworkNone {
		return ""
	}
	p, err := sandbox.LookupProfile(cfg.Profile)
	if err == nil && p.Network {
		return fmt.Sprintf("loopback only: profile %s enables network access, which was not available when the sandbox was made (see agentkernel doctor)", p.Name)
	}
	return "loopback only"
}

// writeInfo prints one sandbox for people.
func writeInfo(w io.Writer, now time.Time, in *service.Info) error {
	tw := newTable(w)
	row := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t"+format+"\n", append([]any{k}, args...)...)
	}
	c := in.Config
	row("Name", "%s", in.Name)
	row("ID", "%s", in.ID)
	status := statusText(in)
	if in.PID > 0 {
		status += fmt.Sprintf(" (pid %d)", in.PID)
	}
	row("Status", "%s", status)
	row("Backend", "%s", orDash(string(in.Backend)))
	row("Image", "%s", c.Image)
	row("Profile", "%s", c.Profile)
	row("Created", "%s (%s)", in.CreatedAt.Local().Format(time.RFC3339), ago(now, in.CreatedAt))
	if in.StartedAt != nil {
		row("Started", "%s (%s)", in.StartedAt.Local().Format(time.RFC3339), ago(now, *in.StartedAt))
	}
	if in.ExpiresAt != nil {
		row("Expires", "%s", in.ExpiresAt.Local().Format(time.RFC3339))
	}
	row("Resources", "%d vCPU, %d MB memory, %d processes, %d%% CPU", c.VCPUs, c.MemoryMB, c.PidsLimit, c.CPUPercent)
	net := c.Network
	if note := networkNote(c); note != "" {
		net += " (" + note + ")"
	}
	if c.Network == sandbox.NetworkNAT {
		net += ", egress: default"
		if c.Egress.AllowlistOnly {
			net = fmt.Sprintf("%s, egress: allowlist only (%d domains, %d networks)", c.Network, len(c.Egress.AllowDomains), len(c.Egress.AllowCIDRs))
		}
		if n := len(c.Egress.DenyDomains) + len(c.Egress.DenyCIDRs) + len(c.Egress.DenyPorts); n > 0 {
			net += fmt.Sprintf(", %d deny rules", n)
		}
		net += " (agentkernel sandbox network " + in.Name + ")"
	}
	row("Network", "%s", net)
	root := "writable"
	if c.ReadOnlyRoot {
		root = "read-only"
	}
	row("Root filesystem", "%s", root)
	row("Seccomp", "%s", c.Seccomp)
	for _, m := range c.Mounts {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		row("Mount", "%s -> %s (%s)", m.Source, m.Target, mode)
	}
	for _, p := range c.Ports {
		row("Port", "%s", p)
	}
	for _, p := range in.Ports {
		row("Published", "127.0.0.1:%d -> %d/%s", p.HostPort, p.ContainerPort, p.Protocol)
	}
	if len(c.Env) > 0 {
		keys := make([]string, len(c.Env))
		for i, kv := range c.Env {
			keys[i], _, _ = strings.Cut(kv, "=")
		}
		row("Env", "%s", strings.Join(keys, " "))
	}
	if c.WorkDir != "" {
		row("Workdir", "%s", c.WorkDir)
	}
	if c.User != "" {
		row("User", "%s", c.User)
	}
	if c.TTL > 0 {
		row("TTL", "%s", c.TTL)
	}
	return tw.Flush()
}

// writeProcessTable prints detached processes as a table.
func writeProcessTable(w io.Writer, now time.Time, procs []agentv1.ProcessInfo) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tPID\tSTATE\tEXIT\tSTARTED\tCOMMAND")
	for _, p := range procs {
		exit := "-"
		if p.Exit != nil {
			exit = fmt.Sprint(p.Exit.Code)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", p.ID, p.PID, p.State, exit,
			ago(now, p.StartedAt), strings.Join(p.Args, " "))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
