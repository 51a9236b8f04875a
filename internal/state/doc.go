// Package state is the per-sandbox state store: one directory per sandbox
// under <root>/sandboxes holding state.json (written atomically: temp file,
// fsync, rename) and a lock file (flock) that serialises mutations between
// every process sharing the root — the CLI and a server may act at once.
//
// Host side; imports no backend and no frontend.
package state
