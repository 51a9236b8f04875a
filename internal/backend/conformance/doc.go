// Package conformance is the one test suite every backend must pass:
// lifecycle, exit codes, streaming, stdin, PTY, files, detached processes,
// limits, isolation and escape attempts, and no leaks afterwards. A backend
// package calls Run from its own tests with a Harness.
//
// Host side, tests only. It drives the backend through the real manager and
// the real agent, exactly as users do.
package conformance
