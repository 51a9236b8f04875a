// Package ingest brings OCI images into the image store: it pulls them
// from registries and imports docker save archives and OCI layouts, with
// go-containerregistry. Each layer is downloaded and applied once (package
// layer), verified against its blob digest and its diffID on the way, and
// committed under its chain ID; the image record is written last.
//
// Only agentkernel-server links this package: the CLI reaches it through
// package fetchcmd, so that every CLI start does not pay for the registry
// client's initialisation.
package ingest
