package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/netpolicy"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

// sandboxInfo is a sandbox as the tools report it.
type sandboxInfo struct {
	Name      string     `json:"name"`
	ID        string     `json:"id"`
	Status    string     `json:"status" jsonschema:"created, running or stopped"`
	Backend   string     `json:"backend"`
	Image     string     `json:"image"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func infoOf(in *service.Info) sandboxInfo {
	return sandboxInfo{
		Name: in.Name, ID: in.ID, Status: string(in.Status), Backend: string(in.Backend),
		Image: in.Config.Image, CreatedAt: in.CreatedAt, ExpiresAt: in.ExpiresAt,
	}
}

type nameInput struct {
	Name string `json:"name" jsonschema:"Name of the sandbox"`
}

type createInput struct {
	Name      string       `json:"name,omitempty" jsonschema:"Name for the sandbox (letters, digits, - and _); default: a generated one"`
	Image     string       `json:"image,omitempty" jsonschema:"OCI image to use, pulled if needed (default: host, a read-only view of the host's userland that needs no download)"`
	Profile   string       `json:"profile,omitempty" jsonschema:"Security profile (default: moderate)"`
	Network   *bool        `json:"network,omitempty" jsonschema:"Network access under the sandbox's egress policy (default: what the profile says)"`
	MemoryMB  *int         `json:"memory_mb,omitempty" jsonschema:"Memory limit in MB (default: the profile's)"`
	VCPUs     *int         `json:"vcpus,omitempty" jsonschema:"Number of virtual CPUs (default: 1)"`
	Env       []string     `json:"env,omitempty" jsonschema:"Environment variables for every command, as KEY=VALUE pairs"`
	Workdir   string       `json:"workdir,omitempty" jsonschema:"Default working directory of commands (absolute path)"`
	TTL       string       `json:"ttl,omitempty" jsonschema:"Remove the sandbox after this long (e.g. 30m, 1h, 2d); default: never"`
	Ports     []string     `json:"ports,omitempty" jsonschema:"Ports to publish on the host's 127.0.0.1 (e.g. [\"8080:80\", \"3000\"]: a free host port for 3000)"`
	Egress    *egressRules `json:"egress,omitempty" jsonschema:"Egress rules (network access is implied)"`
	Preset    string       `json:"network_preset,omitempty" jsonschema:"An agent's egress preset: its API hosts, package registries and GitHub only"`
	SourceURL string       `json:"source_url,omitempty" jsonschema:"Git repo URL to clone into /workspace; not yet supported (needs sandbox networking)"`
	SourceRef string       `json:"source_ref,omitempty" jsonschema:"Git ref to check out after cloning (branch, tag or commit)"`
}

// egressRules are netpolicy.Rules with descriptions for the model.
type egressRules struct {
	AllowDomains  []string `json:"allow_domains,omitempty" jsonschema:"Reachable domains: example.com, or *.example.com for it and every name under it"`
	DenyDomains   []string `json:"deny_domains,omitempty" jsonschema:"Domains that never resolve and are never reachable, also by address"`
	AllowlistOnly bool     `json:"allowlist_only,omitempty" jsonschema:"Only allowed domains and networks are reachable"`
	AllowCIDRs    []string `json:"allow_cidrs,omitempty" jsonschema:"Reachable networks, private ones included (10.0.0.0/8)"`
	DenyCIDRs     []string `json:"deny_cidrs,omitempty" jsonschema:"Networks never reachable"`
	AllowPorts    []string `json:"allow_ports,omitempty" jsonschema:"If set, the only destination ports allowed (443, 8000-8100, 53/udp)"`
	DenyPorts     []string `json:"deny_ports,omitempty" jsonschema:"Destination ports refused"`
}

func (e *egressRules) rules() netpolicy.Rules {
	if e == nil {
		return netpolicy.Rules{}
	}
	return netpolicy.Rules(*e)
}

type networkInput struct {
	Name string `json:"name" jsonschema:"Name of the sandbox"`
	egressRules
	Replace bool `json:"replace,omitempty" jsonschema:"Replace the rules instead of adding to them"`
}

type listOutput struct {
	Sandboxes []sandboxInfo `json:"sandboxes"`
}

type removeOutput struct {
	Name string `json:"name"`
}

type extendInput struct {
	Name string `json:"name" jsonschema:"Name of the sandbox"`
	By   string `json:"by,omitempty" jsonschema:"Additional time (e.g. 1h, 30m, 2d); default: 1h"`
}

type snapshotTakeInput struct {
	Sandbox string `json:"sandbox" jsonschema:"Name of the sandbox to snapshot"`
	Name    string `json:"name" jsonschema:"Name for the snapshot"`
}

type snapshotNameInput struct {
	Name string `json:"name" jsonschema:"Name of the snapshot"`
}

type snapshotRestoreInput struct {
	Name   string `json:"name" jsonschema:"Name of the snapshot to restore"`
	AsName string `json:"as_name,omitempty" jsonschema:"Name for the restored sandbox (default: the original's name + -restored)"`
}

// errSnapshots is every snapshot tool's answer until a backend can save a
// sandbox's state.
var errSnapshots = fmt.Errorf("snapshots are %w: no backend of this agentkernel can save a sandbox's state", errdefs.ErrNotImplemented)

func profileEnum(s *jsonschema.Schema) { enum(s, "profile", sandbox.ProfileNames()...) }

func (t *tools) addSandboxTools(s *mcp.Server) {
	add(t, s, &mcp.Tool{Name: "sandbox_create",
		Description: "Create a new persistent sandbox and start it, for running several commands " +
			"(sandbox_exec) and working with files; it lives until sandbox_remove."},
		func(s *jsonschema.Schema) {
			profileEnum(s)
			enum(s, "network_preset", netpolicy.PresetNames()...)
		}, t.create)
	add(t, s, &mcp.Tool{Name: "sandbox_list", Annotations: readOnly(),
		Description: "List all sandboxes and their status (read-only)."}, nil, t.list)
	add(t, s, &mcp.Tool{Name: "sandbox_remove", Annotations: destructive(),
		Description: "Remove a sandbox: stop its processes and delete it with its files."}, nil, t.remove)
	add(t, s, &mcp.Tool{Name: "sandbox_start",
		Description: "Start a stopped sandbox (its files are kept)."}, nil, t.start)
	add(t, s, &mcp.Tool{Name: "sandbox_stop",
		Description: "Stop a running sandbox, keeping it and its files for a later sandbox_start."}, nil, t.stop)
	add(t, s, &mcp.Tool{Name: "sandbox_extend_ttl",
		Description: "Extend a sandbox's time-to-live: add time to its current expiry (to now when it has " +
			"none or it has passed), at most 30 days at a time."},
		func(s *jsonschema.Schema) { setDefault(s, "by", "1h") }, t.extendTTL)

	add(t, s, &mcp.Tool{Name: "sandbox_network",
		Description: "Show or change a sandbox's egress rules. Rules given are added to the current " +
			"ones (replace: true replaces them); a running sandbox's new connections follow them at " +
			"once. Refused connections are in the sandbox's audit log."},
		nil, t.network)

	add(t, s, &mcp.Tool{Name: "snapshot_list", Annotations: readOnly(),
		Description: "List all snapshots. Snapshots are not yet supported."}, nil,
		func(context.Context, struct{}) (string, any, error) { return "", nil, errSnapshots })
	add(t, s, &mcp.Tool{Name: "snapshot_take",
		Description: "Take a snapshot of a sandbox. Snapshots are not yet supported."}, nil,
		func(context.Context, snapshotTakeInput) (string, any, error) { return "", nil, errSnapshots })
	add(t, s, &mcp.Tool{Name: "snapshot_get", Annotations: readOnly(),
		Description: "Get information about a snapshot. Snapshots are not yet supported."}, nil,
		func(context.Context, snapshotNameInput) (string, any, error) { return "", nil, errSnapshots })
	add(t, s, &mcp.Tool{Name: "snapshot_delete", Annotations: destructive(),
		Description: "Delete a snapshot. Snapshots are not yet supported."}, nil,
		func(context.Context, snapshotNameInput) (string, any, error) { return "", nil, errSnapshots })
	add(t, s, &mcp.Tool{Name: "snapshot_restore",
		Description: "Restore a sandbox from a snapshot. Snapshots are not yet supported."}, nil,
		func(context.Context, snapshotRestoreInput) (string, any, error) { return "", nil, errSnapshots })
}

// config resolves sandbox options against their profile in the server's
// host context, logging the profile's warnings and returning them.
func (t *tools) config(o sandbox.Options, ports []string) (sandbox.Config, []string, error) {
	for _, p := range ports {
		pm, err := sandbox.ParsePort(p)
		if err != nil {
			return sandbox.Config{}, nil, err
		}
		o.Ports = append(o.Ports, pm)
	}
	o.Cwd, o.Home, o.HostEnv = t.opts.Cwd, t.opts.Home, t.opts.HostEnv
	o.NetworkUnavailable = t.mgr.NetworkUnavailable()
	cfg, warnings, err := sandbox.Resolve(o)
	for _, w := range warnings {
		t.log.Warn(w)
	}
	return cfg, warnings, err
}

// prepare checks that sandboxes can start here and pulls the image they use.
func (t *tools) prepare(ctx context.Context, image string) error {
	if t.opts.AgentErr != nil {
		return t.opts.AgentErr
	}
	return t.mgr.EnsureImage(ctx, image, nil)
}

// removeNow removes a sandbox even when ctx was cancelled.
func (t *tools) removeNow(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return t.mgr.Remove(ctx, name)
}

func (t *tools) create(ctx context.Context, in createInput) (string, sandboxInfo, error) {
	var none sandboxInfo
	if in.SourceURL != "" || in.SourceRef != "" {
		return "", none, fmt.Errorf("cloning a repository into the sandbox is %w (it needs sandbox networking)", errdefs.ErrNotImplemented)
	}
	if in.Name != "" {
		if err := sandbox.ValidateName(in.Name); err != nil {
			return "", none, err
		}
	}
	ttl, err := parseDuration("ttl", in.TTL)
	if err != nil {
		return "", none, err
	}
	cfg, warnings, err := t.config(sandbox.Options{
		Profile: in.Profile, Image: in.Image, Network: in.Network, MemoryMB: in.MemoryMB, VCPUs: in.VCPUs,
		Env: in.Env, WorkDir: in.Workdir, TTL: ttl, Egress: in.Egress.rules(), NetworkPreset: in.Preset,
	}, in.Ports)
	if err != nil {
		return "", none, err
	}
	if err := t.prepare(ctx, cfg.Image); err != nil {
		return "", none, err
	}
	info, err := t.mgr.Create(ctx, service.CreateRequest{Name: in.Name, Config: cfg})
	if err != nil {
		return "", none, err
	}
	name := info.Name
	if info, err = t.mgr.Start(ctx, name); err != nil {
		// A sandbox that cannot start is no use to keep.
		return "", none, errors.Join(err, t.removeNow(ctx, name))
	}
	text := fmt.Sprintf("Sandbox '%s' created and started with image '%s'", info.Name, cfg.Image)
	for _, w := range warnings {
		text += "\nNote: " + w
	}
	return text, infoOf(info), nil
}

func (t *tools) list(ctx context.Context, _ struct{}) (string, listOutput, error) {
	infos, err := t.mgr.List(ctx)
	if err != nil {
		return "", listOutput{}, err
	}
	out := listOutput{Sandboxes: []sandboxInfo{}}
	var b strings.Builder
	b.WriteString("NAME\tSTATUS\tBACKEND\tIMAGE\n")
	for _, in := range infos {
		if in.Pooled { // warm spares of sandbox_run, nobody's yet
			continue
		}
		out.Sandboxes = append(out.Sandboxes, infoOf(in))
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", in.Name, in.Status, in.Backend, in.Config.Image)
	}
	if len(out.Sandboxes) == 0 {
		return "No sandboxes found.", out, nil
	}
	return truncate(b.String()), out, nil
}

func (t *tools) remove(ctx context.Context, in nameInput) (string, removeOutput, error) {
	if err := t.mgr.Remove(ctx, in.Name); err != nil {
		return "", removeOutput{}, err
	}
	return fmt.Sprintf("Sandbox '%s' removed.", in.Name), removeOutput{Name: in.Name}, nil
}

func (t *tools) start(ctx context.Context, in nameInput) (string, sandboxInfo, error) {
	info, err := t.mgr.Get(ctx, in.Name)
	if err != nil {
		return "", sandboxInfo{}, err
	}
	if info.Status == sandbox.StatusRunning {
		return fmt.Sprintf("Sandbox '%s' is already running.", info.Name), infoOf(info), nil
	}
	if err := t.prepare(ctx, ""); err != nil {
		return "", sandboxInfo{}, err
	}
	if info, err = t.mgr.Start(ctx, in.Name); err != nil {
		return "", sandboxInfo{}, err
	}
	return fmt.Sprintf("Sandbox '%s' started.", info.Name), infoOf(info), nil
}

func (t *tools) stop(ctx context.Context, in nameInput) (string, sandboxInfo, error) {
	info, err := t.mgr.Get(ctx, in.Name)
	if err != nil {
		return "", sandboxInfo{}, err
	}
	if info.Status != sandbox.StatusRunning {
		return fmt.Sprintf("Sandbox '%s' is already stopped.", info.Name), infoOf(info), nil
	}
	if info, err = t.mgr.Stop(ctx, in.Name); err != nil {
		return "", sandboxInfo{}, err
	}
	return fmt.Sprintf("Sandbox '%s' stopped.", info.Name), infoOf(info), nil
}

func (t *tools) extendTTL(ctx context.Context, in extendInput) (string, sandboxInfo, error) {
	by := time.Hour
	if in.By != "" {
		var err error
		if by, err = parseDuration("by", in.By); err != nil {
			return "", sandboxInfo{}, err
		}
	}
	info, err := t.mgr.ExtendTTL(ctx, in.Name, by)
	if err != nil {
		return "", sandboxInfo{}, err
	}
	return fmt.Sprintf("Sandbox '%s' now expires at %s.", info.Name, info.ExpiresAt.UTC().Format(time.RFC3339)), infoOf(info), nil
}

func (t *tools) network(ctx context.Context, in networkInput) (string, egressRules, error) {
	rules := in.rules()
	info, err := t.mgr.Get(ctx, in.Name)
	if err == nil && (in.Replace || !rules.IsZero()) {
		info, err = t.mgr.SetEgress(ctx, in.Name, rules, !in.Replace)
	}
	if err != nil {
		return "", egressRules{}, err
	}
	out := egressRules(info.Config.Egress)
	raw, _ := json.Marshal(out)
	return fmt.Sprintf("Sandbox '%s' egress rules: %s", info.Name, raw), out, nil
}

// parseDuration reads an argument's duration (service.ParseDuration's
// forms); "" is 0.
func parseDuration(what, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := service.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return d, nil
}
