package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Moving a process into a cgroup by writing its pid to cgroup.procs takes
// a global lock whose first acquisition waits for an RCU grace period
// (typically 5-50 ms). Two ways in avoid it:
//
//   - a process created directly in a v2 group (clone3 CLONE_INTO_CGROUP,
//     given the directory of V2Dir);
//   - a thread moving itself into a v1 group by writing "0" to its "tasks"
//     file (JoinThread). A descriptor opened by the host keeps the host's
//     credentials, so the sandbox's init can do this without owning the
//     file. The thread that then execs takes its membership along; every
//     later process of the sandbox inherits it.

// TaskFiles opens the "tasks" file of every v1 directory of the group for
// writing, for JoinThread.
func (g *Group) TaskFiles() ([]*os.File, error) {
	var files []*os.File
	for _, d := range g.Dirs {
		if d.Version != 1 {
			continue
		}
		f, err := os.OpenFile(filepath.Join(d.Path, "tasks"), os.O_WRONLY, 0)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("cgroup %s: %w", d.Path, err)
		}
		files = append(files, f)
	}
	return files, nil
}

// V2Dir opens the group's v2 directory (nil if it has none), for
// CLONE_INTO_CGROUP.
func (g *Group) V2Dir() (*os.File, error) {
	for _, d := range g.Dirs {
		if d.Version == 2 {
			f, err := os.Open(d.Path)
			if err != nil {
				return nil, fmt.Errorf("cgroup %s: %w", d.Path, err)
			}
			return f, nil
		}
	}
	return nil, nil
}

// JoinThread moves the calling OS thread (only it) into the v1 group
// whose tasks file fd refers to. The caller must hold
// runtime.LockOSThread.
func JoinThread(fd int) error {
	if _, err := syscall.Write(fd, []byte("0")); err != nil {
		return fmt.Errorf("joining cgroup: %w", err)
	}
	return nil
}
