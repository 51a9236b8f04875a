// Package v1 is version 1 of the protocol between agentkernel (the host) and
// agentkernel-agent (inside every sandbox). It holds the wire types, the
// frame codec used by exec streams, the route names, and a client.
//
// The protocol is HTTP/2 without TLS (prior knowledge h2c) over whatever byte
// stream a backend provides; PROTOCOL.md beside this file is its reference.
//
// Both sides import this package; it imports only the standard library, and
// nothing from the host or the agent.
package v1
