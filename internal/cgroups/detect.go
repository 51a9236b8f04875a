package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// The controllers a sandbox uses.
const (
	Memory = "memory"
	Pids   = "pids"
	CPU    = "cpu"
)

// Hierarchy is one mounted cgroup hierarchy.
type Hierarchy struct {
	// Path is where it is mounted.
	Path string
	// Version is 1 or 2.
	Version int
	// Controllers it serves: for v1 from the mount's super options, for v2
	// from cgroup.controllers of its root.
	Controllers []string
}

// Layout is the set of mounted hierarchies.
type Layout struct {
	Hierarchies []Hierarchy
}

// Detect reads the layout of this process's mount namespace.
func Detect() (*Layout, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	hs, err := ParseMountinfo(f)
	if err != nil {
		return nil, err
	}
	for i, h := range hs {
		if h.Version == 2 {
			b, err := os.ReadFile(filepath.Join(h.Path, "cgroup.controllers"))
			if err == nil {
				hs[i].Controllers = strings.Fields(string(b))
			}
		}
	}
	return &Layout{Hierarchies: hs}, nil
}

// ParseMountinfo returns the cgroup hierarchies listed in a mountinfo
// file (proc(5)). The first mount of each v1 controller set and of v2 wins;
// later ones are bind mounts of the same hierarchy. v2 controllers are left
// empty: they are not in mountinfo.
func ParseMountinfo(r io.Reader) ([]Hierarchy, error) {
	var out []Hierarchy
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		mnt := unescapeMountinfo(pf[4])
		switch qf[0] {
		case "cgroup2":
			if seen["v2"] {
				continue
			}
			seen["v2"] = true
			out = append(out, Hierarchy{Path: mnt, Version: 2})
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(qf[2], ",") {
				switch {
				case o == "rw" || o == "ro" || strings.Contains(o, "=") || o == "clone_children" ||
					o == "noprefix" || o == "xattr" || o == "cpuset_v2_mode" || o == "favordynmods":
				default:
					ctrls = append(ctrls, o)
				}
			}
			if len(ctrls) == 0 { // a named hierarchy such as name=systemd
				continue
			}
			slices.Sort(ctrls)
			key := strings.Join(ctrls, ",")
			if seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, Hierarchy{Path: mnt, Version: 1, Controllers: ctrls})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cgroups: reading mountinfo: %w", err)
	}
	return out, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space, ...) of
// mountinfo path fields.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// For returns the hierarchy that serves controller: the unified one if the
// controller is available there, otherwise its v1 hierarchy.
func (l *Layout) For(controller string) (Hierarchy, bool) {
	for _, h := range l.Hierarchies {
		if h.Version == 2 && slices.Contains(h.Controllers, controller) {
			return h, true
		}
	}
	for _, h := range l.Hierarchies {
		if h.Version == 1 && slices.Contains(h.Controllers, controller) {
			return h, true
		}
	}
	return Hierarchy{}, false
}

// Probe reports whether sandboxes can be limited here: every controller
// (memory, pids, cpu) must be available and its hierarchy writable. The
// error wraps errdefs.ErrUnavailable and names each problem.
func (l *Layout) Probe() error {
	var problems []string
	for _, c := range []string{Memory, Pids, CPU} {
		h, ok := l.For(c)
		if !ok {
			problems = append(problems, fmt.Sprintf("controller %s is not mounted (neither in the unified hierarchy nor on v1)", c))
			continue
		}
		if err := writableDir(h.Path); err != nil {
			problems = append(problems, fmt.Sprintf("controller %s (cgroup v%d at %s): %v", c, h.Version, h.Path, err))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("cgroup limits: %s: %w", strings.Join(problems, "; "), errdefs.ErrUnavailable)
	}
	return nil
}

// Probe detects the layout and probes it.
func Probe() error {
	l, err := Detect()
	if err != nil {
		return errors.Join(err, errdefs.ErrUnavailable)
	}
	return l.Probe()
}
