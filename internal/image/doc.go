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
// layouts by the store's Fetcher (package ingest in agentkernel-server;
// package fetchcmd runs it from the CLI); each layer is applied once
// (package layer) into a directory keyed by its chain ID, and sandboxes
// stack those directories as overlayfs lower layers. store.go describes
// the layout on disk and write.go the protocol a fetcher follows: an
// image becomes visible only when its record is written, after every
// layer is in place.
//
// This package does not link the registry client: the CLI reads the store
// on every start, and ref.go parses references as go-containerregistry
// does, checked against it by a differential fuzz test.
//
// Host side. It imports the sandbox model and errdefs, never a backend.
package image
