// Package procfs reads what agentkernel needs from /proc: a process's
// state and start time, which together identify a process across pid reuse.
//
// Host side; imports only the standard library.
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat returns the state (field 3) and start time (field 22, clock ticks
// since boot) of pid from /proc/PID/stat.
func Stat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may contain
	// anything; the fields after it are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64) // field 22 is the 20th after the name
	if err != nil {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	return f[0][0], start, nil
}

// Alive reports whether pid is the process that started at start and has
// not exited (a zombie counts as exited).
func Alive(pid int, start uint64) bool {
	state, st, err := Stat(pid)
	return err == nil && st == start && state != 'Z' && state != 'X'
}
