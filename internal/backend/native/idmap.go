package native

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// idmapTrees makes the image's files appear inside the sandbox with the
// owners they have in the image. Image layers are unpacked with their
// owners as host ids (root's files owned by host uid 0), which the
// sandbox's user namespace does not map: without this, /etc and /usr of an
// image would belong to "nobody" and sandbox root could not change them
// (no apk add, no pip install). An id-mapped mount shifts them by the
// sandbox's range, so image uid 0 is sandbox root — on read-only trees,
// with copy-up into the sandbox's own upper directory for writes.
//
// The trees are detached mounts the host cloned and init inherited (the
// same mounts: a descriptor copy shares them); init attaches them only
// after it gets its configuration, which is sent after this runs.
func idmapTrees(pid int, trees []*os.File) error {
	if len(trees) == 0 {
		return nil
	}
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/user")
	if err != nil {
		return fmt.Errorf("sandbox user namespace: %w", err)
	}
	defer ns.Close()
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	for _, t := range trees {
		if err := unix.MountSetattr(int(t.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
			return fmt.Errorf("id-mapping image layer %s: %w", t.Name(), err)
		}
	}
	return nil
}
