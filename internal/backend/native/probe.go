//go:build linux

package native

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/cgroups"
	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/seccomp"
)

// minKernel is the oldest kernel with everything the backend uses:
// overlayfs in user namespaces with userxattr (5.11) and mount_setattr (5.12).
var minKernel = [2]int{5, 12}

// Probe reports whether native sandboxes can run here, and if not exactly
// why. It only reads files (no fork); the answer is cached per Backend.
func (b *Backend) Probe(ctx context.Context) error {
	b.probeOnce.Do(func() { b.probeErr = b.probe() })
	return b.probeErr
}

func (b *Backend) probe() error {
	unavailable := func(format string, args ...any) error {
		return fmt.Errorf("native backend: "+format+": %w", append(args, errdefs.ErrUnavailable)...)
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return unavailable("uname: %v", err)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	if v := kernelVersion(release); v[0] < minKernel[0] || v[0] == minKernel[0] && v[1] < minKernel[1] {
		return unavailable("kernel %s is older than %d.%d", release, minKernel[0], minKernel[1])
	}
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		return unavailable("the kernel has no user namespaces (CONFIG_USER_NS)")
	}
	if n, ok := readInt("/proc/sys/user/max_user_namespaces"); ok && n == 0 {
		return unavailable("user namespaces are disabled (user.max_user_namespaces = 0)")
	}
	if os.Geteuid() != 0 {
		if n, ok := readInt("/proc/sys/kernel/unprivileged_userns_clone"); ok && n == 0 {
			return unavailable("unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0); run as root or enable them")
		}
		if n, ok := readInt("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); ok && n != 0 {
			return unavailable("AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1); run as root or allow agentkernel in an AppArmor profile")
		}
	}
	if !hasFilesystem("overlay") && !overlayModule(release) {
		return unavailable("overlayfs is not available (no overlay in /proc/filesystems and no module)")
	}
	if !seccomp.Supported() {
		return unavailable("the kernel has no seccomp filter support")
	}
	if b.opts.AgentPath == "" {
		return unavailable("agent binary agentkernel-agent not found (install it next to agentkernel or set AGENTKERNEL_AGENT)")
	}
	if st, err := os.Stat(b.opts.AgentPath); err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return unavailable("agent binary %s is missing or not executable", b.opts.AgentPath)
	}
	if os.Geteuid() == 0 {
		// Root promises limits; an ordinary user gets them only where
		// hierarchies are delegated (Start warns otherwise).
		layout, err := b.cgroupLayout()
		if err != nil {
			return unavailable("%v", err)
		}
		if err := layout.Probe(); err != nil {
			return fmt.Errorf("native backend: %w", err)
		}
	}
	return nil
}

func (b *Backend) cgroupLayout() (*cgroups.Layout, error) {
	b.layoutOnce.Do(func() { b.layout, b.layoutErr = cgroups.Detect() })
	return b.layout, b.layoutErr
}

func kernelVersion(release string) [2]int {
	var v [2]int
	parts := strings.SplitN(release, ".", 3)
	for i := 0; i < 2 && i < len(parts); i++ {
		n := 0
		for _, c := range parts[i] {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		v[i] = n
	}
	return v
}

func readInt(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return n, err == nil
}

func hasFilesystem(name string) bool {
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) > 0 && string(f[len(f)-1]) == name {
			return true
		}
	}
	return false
}

// overlayModule reports whether overlayfs is available as a module the
// kernel can load on first mount.
func overlayModule(release string) bool {
	for _, ext := range []string{"", ".xz", ".zst", ".gz"} {
		if _, err := os.Stat("/lib/modules/" + release + "/kernel/fs/overlayfs/overlay.ko" + ext); err == nil {
			return true
		}
	}
	return false
}
