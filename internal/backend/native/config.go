//go:build linux

package native

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// initArg0 is the argv[0] under which the host re-executes itself as the
// init stage.
const initArg0 = "agentkernel-native-init"

// Descriptors the init stage inherits. The others, from firstFD on, are
// the mount trees and cgroup files named in initConfig; all but listenFD
// are closed on exec.
const (
	listenFD = 3 // the agent's listening socket; the agent gets it as fd 3
	configFD = 4 // read end of the config pipe (JSON initConfig, then EOF)
	statusFD = 5 // write end of the status pipe: an initError, or EOF at exec
	agentFD  = 6 // the agent binary, opened on the host
	firstFD  = 7 // first mount tree, then cgroup files
)

// initConfig is everything the init stage needs, sent as JSON on configFD.
type initConfig struct {
	Hostname string `json:"hostname"`
	// Lowers are the overlay's lower layers, topmost first.
	Lowers []source `json:"lowers"`
	// Overlay is the directory holding upper/ and work/.
	Overlay source `json:"overlay"`
	// Binds are bound in order over the overlay: the image's read-only
	// binds, then the sandbox's mounts.
	Binds        []bind `json:"binds,omitempty"`
	ReadOnlyRoot bool   `json:"read_only_root,omitempty"`
	// TTYGid is the gid (inside) owning pseudo-terminals, -1 if unmapped.
	TTYGid      int    `json:"tty_gid"`
	Seccomp     string `json:"seccomp"`
	AllowPtrace bool   `json:"allow_ptrace,omitempty"`
	// CgroupFDs are descriptors of the "tasks" files of the sandbox's v1
	// cgroups, opened by the host: init's exec thread joins them first
	// (see cgroups.JoinThread).
	CgroupFDs []int `json:"cgroup_fds,omitempty"`
	// NetFD, if not 0, is a socket on which init sends the host the TAP
	// device it makes (network mode nat, unprivileged; as root the host
	// makes it).
	NetFD     int      `json:"net_fd,omitempty"`
	AgentArgs []string `json:"agent_args"`
	AgentEnv  []string `json:"agent_env"`

	// imageTrees (host side only) are the host's copies of the image's
	// trees, id-mapped into the sandbox's uid range once its user
	// namespace exists (see idmapTrees).
	imageTrees []*os.File
}

// source is a directory or file to mount: either a detached mount tree the
// host cloned and passed as descriptor FD (as root), or a host path the
// init stage clones itself (as an ordinary user, whose sandbox root is the
// user and can reach whatever the user can).
type source struct {
	FD   int    `json:"fd,omitempty"`
	Path string `json:"path,omitempty"`
}

type bind struct {
	Source   source `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
	File     bool   `json:"file,omitempty"` // the source is not a directory
}

// initError is what the init stage reports on the status pipe when it fails.
type initError struct {
	Stage string `json:"stage"`
	Error string `json:"error"`
}

// buildInitConfig describes the sandbox to the init stage. As root, the
// host clones every mount source and passes the trees as descriptors (the
// sandbox's uid range may not be able to reach them by path); the files
// returned must be passed from firstFD on, in order.
func buildInitConfig(spec *sandbox.Spec, ids idMap) (initConfig, []*os.File, error) {
	cfg := initConfig{
		Hostname:     spec.Name,
		ReadOnlyRoot: spec.Config.ReadOnlyRoot,
		TTYGid:       -1,
		Seccomp:      spec.Config.Seccomp,
		AllowPtrace:  spec.Config.AllowPtrace,
		AgentArgs:    []string{"agentkernel-agent", "-listen-fd", "3"},
		AgentEnv:     []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"},
	}
	if d := spec.Config.IdleTimeout; d > 0 {
		cfg.AgentArgs = append(cfg.AgentArgs, "-idle-exit", d.String())
	}
	if ids.Size > 5 {
		cfg.TTYGid = 5 // the tty group of Debian and most distributions
	}
	var files []*os.File
	src := func(path string, attrs uint64) (source, error) {
		if ids.rootless() {
			return source{Path: path}, nil
		}
		f, err := cloneTree(path, attrs)
		if err != nil {
			return source{}, err
		}
		files = append(files, f)
		return source{FD: firstFD + len(files) - 1}, nil
	}
	for _, l := range spec.RootFS.Lowers {
		s, err := src(l, attrROBind)
		if err != nil {
			return cfg, files, fmt.Errorf("image layer: %w", err)
		}
		cfg.Lowers = append(cfg.Lowers, s)
		if !ids.rootless() {
			cfg.imageTrees = append(cfg.imageTrees, files[len(files)-1])
		}
	}
	if len(cfg.Lowers) == 0 {
		return cfg, files, fmt.Errorf("image %q has no layers: %w", spec.RootFS.Image, errdefs.ErrInvalidArgument)
	}
	var err error
	if cfg.Overlay, err = src(filepath.Join(spec.Dir, overlayName), attrRWBind); err != nil {
		return cfg, files, err
	}
	mounts := make([]sandbox.Mount, 0, len(spec.RootFS.Binds)+len(spec.Config.Mounts))
	for _, m := range spec.RootFS.Binds {
		m.ReadOnly = true
		mounts = append(mounts, m)
	}
	if spec.Config.Network == sandbox.NetworkNAT {
		// The sandbox's resolver is the network path's (see nettap).
		mounts = append(mounts, sandbox.Mount{Source: filepath.Join(spec.Dir, resolvConfName), Target: "/etc/resolv.conf", ReadOnly: true})
	}
	mounts = append(mounts, spec.Config.Mounts...)
	for _, m := range mounts {
		if !filepath.IsAbs(m.Target) || slices.Contains(strings.Split(m.Target, "/"), "..") {
			return cfg, files, fmt.Errorf("mount target %q must be an absolute path without ..: %w", m.Target, errdefs.ErrInvalidArgument)
		}
		st, err := os.Stat(m.Source)
		if err != nil {
			return cfg, files, fmt.Errorf("mount source %s: %w: %w", m.Source, errdefs.ErrInvalidArgument, err)
		}
		attrs := uint64(attrRWBind)
		if m.ReadOnly {
			attrs = attrROBind
		}
		s, err := src(m.Source, attrs)
		if err != nil {
			return cfg, files, err
		}
		cfg.Binds = append(cfg.Binds, bind{Source: s, Target: filepath.Clean(m.Target), ReadOnly: m.ReadOnly, File: !st.IsDir()})
	}
	return cfg, files, nil
}
