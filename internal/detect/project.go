package detect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ProcfileName is the Heroku-style process file the Rust agentkernel reads.
const ProcfileName = "Procfile"

// fromProjectFiles applies the project-file table to dir's entries: runtimes
// in table order, each runtime's files in order, first match wins — the Rust
// agentkernel's order. A "*.ext" pattern matches any entry name ending in
// ".ext"; directories never match.
func fromProjectFiles(dir string) (Result, bool, error) {
	entries, err := os.ReadDir(dirOrDot(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("listing project directory: %w", err)
	}
	names := make([]string, 0, len(entries)) // sorted, as ReadDir returns them
	isFile := make(map[string]bool, len(entries))
	for _, e := range entries {
		file := !e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			// Follow it, as the Rust Path::exists does; a dangling link is
			// no project file.
			fi, err := os.Stat(filepath.Join(dir, e.Name()))
			file = err == nil && !fi.IsDir()
		}
		if file {
			names = append(names, e.Name())
			isFile[e.Name()] = true
		}
	}
	for _, r := range runtimes {
		for _, pat := range append(r.files[:len(r.files):len(r.files)], r.extraFiles...) {
			if suffix, glob := strings.CutPrefix(pat, "*"); glob {
				for _, n := range names {
					if len(n) > len(suffix) && strings.HasSuffix(n, suffix) {
						return Result{Image: r.image, Reason: fmt.Sprintf("project file %s (%s)", pat, n)}, true, nil
					}
				}
			} else if isFile[pat] {
				return Result{Image: r.image, Reason: "project file " + pat}, true, nil
			}
		}
	}
	return Result{}, false, nil
}

// procfileMatch returns the match of dir's Procfile: the first process
// (`type: command`, in file order) whose command selects a runtime strongly,
// else the first that selects one weakly. Like the Rust agentkernel it skips
// processes whose command it does not know; unlike it, it reads the command
// as the shell does (Procfile commands run under sh), so `web: env PORT=80
// bundle exec puma` finds bundle.
func procfileMatch(dir string) (match, string, bool, error) {
	data, err := readSmallFile(filepath.Join(dir, ProcfileName))
	if errors.Is(err, fs.ErrNotExist) {
		return match{}, "", false, nil
	}
	if err != nil {
		return match{}, "", false, err
	}
	var (
		weak     match
		weakProc string
		found    bool
	)
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		proc, cmd, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		m, ok := resolveScript(cmd, nil, 0)
		if !ok {
			continue
		}
		proc = strings.TrimSpace(proc)
		if !m.weak() {
			return m, proc, true, nil
		}
		if !found {
			weak, weakProc, found = m, proc, true
		}
	}
	return weak, weakProc, found, nil
}

func dirOrDot(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}
