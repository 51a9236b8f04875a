// Package sandbox defines what a sandbox is, independent of how it is
// isolated: its configuration and the profiles that fill it in, name, port
// and path validation, lifecycle states, and the Backend interface every
// isolation technology implements, with the registry that detects which of
// them can run on this host.
//
// Host side. It imports no backend and no frontend.
package sandbox
