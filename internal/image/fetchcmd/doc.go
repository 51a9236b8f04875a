// Package fetchcmd runs image pulls and imports in a helper process: the
// agentkernel-server binary, which links the registry client (package
// ingest), on behalf of the CLI, which does not, so that the CLI starts
// faster on every command.
//
// The helper is `agentkernel-server --root DIR fetch pull|import ...`. It
// writes one JSON event per line on stdout (event.go): layer progress as
// it happens, then the result or the error with its kind, so that the
// caller sees the same progress, images and error kinds as an in-process
// fetch.
package fetchcmd
