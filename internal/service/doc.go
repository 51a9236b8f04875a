// Package service is the manager: the library behind every frontend. It owns
// sandbox lifecycle (create, start, stop, remove, TTL, gc) on top of the
// state store, resolves images, picks backends, and carries exec, file and
// process operations to a sandbox's agent.
//
// Host side. Frontends import it; it imports no frontend and no backend
// package (backends are handed to it in a sandbox.Registry).
package service
