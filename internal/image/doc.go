// Package image is the image store: it resolves an image reference to the
// root filesystem form backends consume (sandbox.RootFS). For now it knows
// one image, the pseudo-image "host": a read-only view of the host's
// userland built from a small skeleton directory (materialised once under
// <root>/images/host, refreshed when the host's /etc changes) plus
// read-only binds of /usr (and of /bin, /sbin, /lib* where they are real
// directories). $HOME, /root, /home, /var, /run, /tmp, /srv, /mnt, /opt and
// every secret in /etc are absent by construction: only an allowlist of
// non-secret /etc entries is copied. OCI images arrive in a later issue.
//
// Host side. It imports the sandbox model and errdefs, never a backend.
package image
