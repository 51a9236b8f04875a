// Package cgroups puts a sandbox's processes into per-sandbox control
// groups and limits their memory, process count and CPU time. It works on
// the unified hierarchy (cgroup v2) where the controllers are available
// there, and on the per-controller v1 hierarchies otherwise (hybrid hosts
// such as this project's CI have memory, pids and cpu on v1). The layout is
// read from /proc/self/mountinfo, never guessed.
//
// Host side, except JoinThread, which the native backend's init stage
// calls inside the sandbox's namespaces. It imports only the standard
// library and errdefs; it knows nothing about sandboxes beyond a relative
// group path and limits.
package cgroups
