// Package layer applies one OCI/Docker image layer (an uncompressed tar)
// to its own directory, in the on-disk form overlayfs stacks: the image
// store unpacks every layer once, keyed by chain ID, and the native backend
// mounts those directories as overlayfs lower dirs, inside a user namespace
// with the mount option "userxattr". So a whiteout is written as a 0/0
// character device and an opaque directory carries user.overlay.opaque=y.
//
// A layer is applied against the merged view of the layers below it, the
// way docker and containerd apply layers on top of their mounted parents:
// a path that crosses a symlink of a lower layer lands where that symlink
// leads, resolved inside the image root, never on the host. Image tarballs
// cross a trust boundary, so every write goes through directory file
// descriptors opened with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS).
//
// Host side. It imports nothing from the project (its tests use testutil).
package layer
