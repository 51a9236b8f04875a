package cgroups

import "strconv"

// applyV1 writes lim to a v1 group. Memory also caps memory+swap when
// swap accounting is on, so swapping cannot dodge the limit; the OOM
// killer stays enabled, so a process over the limit is killed rather than
// the group frozen.
func (d Dir) applyV1(lim Limits) error {
	for _, c := range d.Controllers {
		switch c {
		case Memory:
			v := strconv.FormatInt(lim.MemoryBytes, 10)
			if err := writeFile(d.Path, "memory.limit_in_bytes", v); err != nil {
				return err
			}
			if exists(d.Path, "memory.memsw.limit_in_bytes") {
				if err := writeFile(d.Path, "memory.memsw.limit_in_bytes", v); err != nil {
					return err
				}
			}
		case Pids:
			if err := writeFile(d.Path, "pids.max", strconv.FormatInt(lim.Pids, 10)); err != nil {
				return err
			}
		case CPU:
			if err := writeFile(d.Path, "cpu.cfs_period_us", strconv.FormatInt(lim.CPUPeriodUs, 10)); err != nil {
				return err
			}
			if err := writeFile(d.Path, "cpu.cfs_quota_us", strconv.FormatInt(lim.CPUQuotaUs, 10)); err != nil {
				return err
			}
		}
	}
	return nil
}
