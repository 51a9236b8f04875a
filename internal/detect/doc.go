// Package detect chooses the OCI image a command or a project directory needs,
// for `agentkernel run --image auto` (and any frontend that offers "auto").
//
// It follows the Rust agentkernel 0.18.1 (src/languages.rs and the image
// selection of `run` in src/main.rs): the same command table, the same
// project-file table in the same order, Procfile parsing, and agentkernel.toml's
// [sandbox] base_image and runtime keys. Where this package goes further —
// looking through wrappers such as `env`, `sh -c` and `uv run`, treating a bare
// shell as a weak hint, a few extra commands and project files — the
// difference is documented on Image and marked "extension" in Table.
//
// Detection only reads the project directory (one listing, a stat per
// symlink in it, agentkernel.toml and Procfile, each at most 1 MiB); it never
// runs anything and never touches the network. Pulling the image is the
// image store's job.
//
// Host side. Imports only the standard library, internal/errdefs and the TOML
// decoder; it must not import a backend, a frontend, the manager or the image
// store, so that every frontend can use it without dragging those in.
package detect
