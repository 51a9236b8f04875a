// Package native is the native sandbox backend: Linux namespaces (user,
// mount, pid, network, IPC, UTS, cgroup), an overlayfs root assembled and
// pivoted into inside the sandbox's own mount namespace, a minimal /dev,
// masked /proc and /sys, a reduced capability bounding set, no_new_privs,
// seccomp-bpf, Landlock, and cgroup limits. No daemon: the sandbox's PID 1
// is the agent, and any later process finds it again from the Runtime the
// manager stored.
//
// The package has two halves in one binary:
//
//   - the host side (backend.go, start.go, stop.go, probe.go, userns.go,
//     rootfs.go, socket.go) runs in agentkernel itself; it imports the
//     sandbox model, errdefs, cgroups, the agent protocol and x/sys, and no
//     other backend or frontend;
//   - the init stage (init.go, mounts.go, devices.go, proc.go, caps.go,
//     landlock.go, network.go) runs inside the new namespaces: the host
//     re-executes /proc/self/exe as "agentkernel-native-init", MaybeInit
//     intercepts it before anything else in main, reads its configuration
//     from a pipe, builds the sandbox's root and execs the agent. It
//     imports seccomp and go-landlock but never touches host state.
//
// # Running as root and as an ordinary user
//
// As root, sandbox uids and gids 0..65535 map to a host range of 65536 ids
// that no other sandbox uses (allocated in <root>/native/uids). As an
// ordinary user, only uid and gid 0 exist inside, mapped to the user's own
// ids (setgroups is denied, supplementary groups show as nobody); cgroup
// limits are applied only where the hierarchies are writable (delegated),
// and bind mounts are limited to what the user can read.
package native
