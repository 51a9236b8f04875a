package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// enableV2 enables controllers in cgroup.subtree_control of the mount
// root and of every directory between it and the group rel, creating those
// directories. (A v2 group can only use a controller its parent delegates.)
func enableV2(mount, rel string, controllers []string) error {
	var b strings.Builder
	for _, c := range controllers {
		fmt.Fprintf(&b, "+%s ", c)
	}
	want := strings.TrimSpace(b.String())
	dir := mount
	parts := strings.Split(filepath.Dir(rel), "/")
	if filepath.Dir(rel) == "." {
		parts = nil
	}
	for i := 0; ; i++ {
		cur, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		if !hasAll(strings.Fields(string(cur)), controllers) {
			if err := writeFile(dir, "cgroup.subtree_control", want); err != nil {
				return err
			}
		}
		if i == len(parts) {
			return nil
		}
		dir = filepath.Join(dir, parts[i])
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
	}
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// applyV2 writes lim to a v2 group; swap is off so it cannot dodge the
// memory limit.
func (d Dir) applyV2(lim Limits) error {
	for _, c := range d.Controllers {
		switch c {
		case Memory:
			if err := writeFile(d.Path, "memory.max", strconv.FormatInt(lim.MemoryBytes, 10)); err != nil {
				return err
			}
			if exists(d.Path, "memory.swap.max") {
				if err := writeFile(d.Path, "memory.swap.max", "0"); err != nil {
					return err
				}
			}
		case Pids:
			if err := writeFile(d.Path, "pids.max", strconv.FormatInt(lim.Pids, 10)); err != nil {
				return err
			}
		case CPU:
			v := fmt.Sprintf("%d %d", lim.CPUQuotaUs, lim.CPUPeriodUs)
			if err := writeFile(d.Path, "cpu.max", v); err != nil {
				return err
			}
		}
	}
	return nil
}
