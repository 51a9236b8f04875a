// Package netpolicy decides which connections and name lookups a sandbox
// with network access may make. It is the one policy engine of every
// backend: the network path (package netstack) asks it about each DNS
// question and each new connection, by destination address and port and
// by the name the connection claims (TLS SNI, HTTP Host), and acts on the
// answer.
//
// Some destinations are refused whatever the rules say: the host itself
// (loopback and every address of the host), link-local addresses and
// cloud metadata services. Private ranges are refused unless a CIDR rule
// allows them. Domain rules use agentkernel's patterns: "example.com" is
// that name, "*.example.com" that name and every name under it.
//
// Host and sandbox independent; imports only the standard library and
// errdefs.
package netpolicy
