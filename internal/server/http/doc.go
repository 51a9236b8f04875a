// Package httpapi is agentkernel's HTTP API (`agentkernel serve`): the
// routes, shapes and envelope the published SDKs (npm agentkernel 0.18.1 is
// the reference client) depend on, over the manager.
//
// Every handler parses its input, calls the manager and renders the
// result; errors become statuses in one place (errorStatus). Routes the
// SDK knows that agentkernel does not serve yet answer 501, not 404.
//
// Host side, a frontend: it imports the manager and the error kinds, never
// a backend or another frontend.
package httpapi
