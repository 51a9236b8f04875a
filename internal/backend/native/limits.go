//go:build linux

package native

import (
	"context"
	"fmt"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/cgroups"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// cpuPeriodUs is the CFS period CPU limits are expressed in.
const cpuPeriodUs = 100_000

// createCgroups makes the sandbox's cgroups with its limits. As an
// ordinary user without delegated hierarchies it returns nil: the sandbox
// runs without limits (Probe says so; the log warns).
func (b *Backend) createCgroups(spec *sandbox.Spec, ids idMap, undo *cleanups) (*cgroups.Group, error) {
	layout, err := b.cgroupLayout()
	if err != nil {
		return nil, err
	}
	if ids.rootless() {
		if err := layout.Probe(); err != nil {
			b.log.Warn("sandbox runs without cgroup limits", "name", spec.Name, "reason", err)
			return nil, nil
		}
	}
	c := spec.Config
	lim := cgroups.Limits{
		MemoryBytes: int64(c.MemoryMB) << 20,
		Pids:        int64(c.PidsLimit),
		CPUQuotaUs:  int64(c.VCPUs) * int64(c.CPUPercent) * cpuPeriodUs / 100,
		CPUPeriodUs: cpuPeriodUs,
	}
	g, err := layout.Create("agentkernel/"+spec.ID, lim)
	if err != nil {
		return nil, fmt.Errorf("sandbox limits: %w", err)
	}
	undo.add(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Destroy(ctx)
	})
	return g, nil
}
