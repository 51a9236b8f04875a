package sandbox

import (
	"fmt"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// Status is a sandbox's lifecycle state.
type Status string

const (
	StatusCreated Status = "created" // configured, never started
	StatusRunning Status = "running"
	StatusStopped Status = "stopped" // stopped, or found dead
)

// Operation is something done to a sandbox that depends on its state.
type Operation string

const (
	OpStart  Operation = "start"
	OpStop   Operation = "stop"
	OpExec   Operation = "exec"
	OpFiles  Operation = "access files of"
	OpExport Operation = "export"
	OpRemove Operation = "remove"
)

// allowed is the one lifecycle table: which operation may run in which state.
var allowed = map[Operation][]Status{
	OpStart:  {StatusCreated, StatusStopped},
	OpStop:   {StatusCreated, StatusRunning, StatusStopped}, // stopping a stopped sandbox is a no-op
	OpExec:   {StatusRunning},
	OpFiles:  {StatusRunning},
	OpExport: {StatusRunning}, // the agent reads the tree
	OpRemove: {StatusCreated, StatusRunning, StatusStopped},
}

// Check returns a failed-precondition error if op may not run in state s.
func Check(name string, s Status, op Operation) error {
	for _, ok := range allowed[op] {
		if ok == s {
			return nil
		}
	}
	return fmt.Errorf("cannot %s sandbox %q: it is %s: %w", op, name, s, errdefs.ErrFailedPrecondition)
}
