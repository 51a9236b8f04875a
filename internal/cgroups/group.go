package cgroups

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// Limits are what a group enforces; a zero field is no limit.
type Limits struct {
	MemoryBytes int64
	Pids        int64
	// CPUQuota of CPUPeriod microseconds of CPU time may be used per
	// period (across all CPUs).
	CPUQuotaUs  int64
	CPUPeriodUs int64
}

func (l Limits) controllers() []string {
	var c []string
	if l.MemoryBytes > 0 {
		c = append(c, Memory)
	}
	if l.Pids > 0 {
		c = append(c, Pids)
	}
	if l.CPUQuotaUs > 0 {
		c = append(c, CPU)
	}
	return c
}

// Dir is one directory of a group: the group in one hierarchy.
type Dir struct {
	Path        string   `json:"path"`
	Version     int      `json:"version"`
	Controllers []string `json:"controllers,omitempty"`
}

// Group is a sandbox's control group, one directory per hierarchy used.
// It is plain data so that a later process (stop from another CLI) can
// rebuild it from what Dirs returned.
type Group struct {
	Dirs []Dir `json:"dirs"`
}

// Create makes the group rel (a relative path such as "agentkernel/<id>")
// in every hierarchy serving a controller lim needs, and applies lim. On
// error nothing is left behind.
func (l *Layout) Create(rel string, lim Limits) (*Group, error) {
	if rel == "" || filepath.IsAbs(rel) || slices.Contains(strings.Split(rel, "/"), "..") {
		return nil, fmt.Errorf("cgroup path %q: %w", rel, errdefs.ErrInvalidArgument)
	}
	g := &Group{}
	byPath := map[string]int{}
	for _, c := range lim.controllers() {
		h, ok := l.For(c)
		if !ok {
			return nil, fmt.Errorf("cgroup controller %s is not available: %w", c, errdefs.ErrUnavailable)
		}
		if i, ok := byPath[h.Path]; ok {
			g.Dirs[i].Controllers = append(g.Dirs[i].Controllers, c)
			continue
		}
		byPath[h.Path] = len(g.Dirs)
		g.Dirs = append(g.Dirs, Dir{Path: filepath.Join(h.Path, rel), Version: h.Version, Controllers: []string{c}})
	}
	for i, d := range g.Dirs {
		mount := strings.TrimSuffix(d.Path, "/"+rel)
		err := d.create(mount, rel)
		if err == nil {
			err = d.apply(lim)
		}
		if err != nil {
			cleanup := &Group{Dirs: g.Dirs[:i+1]}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return nil, errors.Join(fmt.Errorf("creating cgroup %s: %w", d.Path, err), cleanup.Destroy(ctx))
		}
	}
	return g, nil
}

// Find returns the group rel as Create(rel, lim) would have made it for
// limits on every controller, whether or not it exists: Destroy on it
// cleans up a group whose creator died before recording it.
func (l *Layout) Find(rel string) *Group {
	g := &Group{}
	seen := map[string]bool{}
	for _, c := range (Limits{MemoryBytes: 1, Pids: 1, CPUQuotaUs: 1}).controllers() {
		if h, ok := l.For(c); ok && !seen[h.Path] {
			seen[h.Path] = true
			g.Dirs = append(g.Dirs, Dir{Path: filepath.Join(h.Path, rel), Version: h.Version})
		}
	}
	return g
}

// create makes the directory (and its parents); in v2 it first enables the
// group's controllers in every ancestor's subtree_control.
// The parent (agentkernel/) is shared and removed by the last Destroy, so
// it can vanish between creating it and the group: then start over.
func (d Dir) create(mount, rel string) error {
	for attempt := 0; ; attempt++ {
		err := d.createOnce(mount, rel)
		if err == nil || !errors.Is(err, os.ErrNotExist) || attempt == 4 {
			return err
		}
	}
}

func (d Dir) createOnce(mount, rel string) error {
	if d.Version == 2 {
		if err := enableV2(mount, rel, d.Controllers); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(d.Path), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(d.Path, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

func (d Dir) apply(lim Limits) error {
	if d.Version == 2 {
		return d.applyV2(lim)
	}
	return d.applyV1(lim)
}

// Add moves process pid (all its threads) into the group.
func (g *Group) Add(pid int) error {
	for _, d := range g.Dirs {
		if err := writeFile(d.Path, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("adding pid %d to cgroup %s: %w", pid, d.Path, err)
		}
	}
	return nil
}

// Paths lists the group's directories.
func (g *Group) Paths() []string {
	var p []string
	for _, d := range g.Dirs {
		p = append(p, d.Path)
	}
	return p
}

// Procs lists the processes in the group (from its first directory).
func (g *Group) Procs() ([]int, error) {
	if len(g.Dirs) == 0 {
		return nil, nil
	}
	return readProcs(g.Dirs[0].Path)
}

// Destroy kills whatever still runs in the group and removes its
// directories, retrying while the kernel releases exiting processes.
// Directories already gone are fine; it is idempotent. The shared parent
// directory goes too once its last group is gone.
func (g *Group) Destroy(ctx context.Context) error {
	var errs []error
	for _, d := range g.Dirs {
		if err := d.destroy(ctx); err != nil {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d.Path, err))
		}
	}
	return errors.Join(errs...)
}

func (d Dir) destroy(ctx context.Context) error {
	delay := time.Millisecond
	for {
		err := syscall.Rmdir(d.Path)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			// The shared parent goes with its last group; it fails, as
			// it should, while other groups (or the hierarchy's root) remain.
			syscall.Rmdir(filepath.Dir(d.Path))
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			return err
		}
		d.kill()
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (processes still inside: %v)", err, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// kill SIGKILLs every process in the directory.
func (d Dir) kill() {
	if d.Version == 2 {
		if writeFile(d.Path, "cgroup.kill", "1") == nil {
			return
		}
	}
	pids, _ := readProcs(d.Path)
	for _, p := range pids {
		if p != os.Getpid() { // a thread of ours may be passing through (JoinThread)
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

func readProcs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// writeFile writes a cgroup control file (which must already exist).
func writeFile(dir, name, value string) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, name, err)
	}
	return nil
}

func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

func writableDir(dir string) error {
	return syscall.Access(dir, 2 /* W_OK */)
}
