// Package image is the image store: it resolves an image reference to the
// root filesystem form backends consume (sandbox.RootFS).
//
// Two kinds of image exist. The pseudo-image "host" is a read-only view of
// the host's userland built from a small skeleton directory (materialised
// once under <root>/images/host, refreshed when the host's /etc changes)
// plus read-only binds of /usr (and of /bin, /sbin, /lib* where they are
// real directories); $HOME, /root, /home, /var, /run, /tmp, /srv, /mnt, /opt
// and every secret in /etc are absent by construction. OCI images are
// pulled from registries or imported from docker save archives and OCI
// layouts (go-containerregistry); each layer is applied once (package
// layer) into a directory keyed by its chain ID, and sandboxes stack those
// directories as overlayfs lower layers. store.go describes the layout on
// disk; a pull or an import becomes visible only when its record is
// written, after every layer is in place.
//
// Host side. It imports the sandbox model and errdefs, never a backend.
package image
