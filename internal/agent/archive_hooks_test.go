package agent

// Hooks into the archiver for the external tests (package agent_test).

// SetArchivePseudoDirs replaces the directories archived empty until the
// test ends.
func SetArchivePseudoDirs(t interface{ Cleanup(func()) }, dirs []string) {
	old := pseudoDirs
	pseudoDirs = dirs
	t.Cleanup(func() { pseudoDirs = old })
}

// SetArchiveHook runs f after each regular file's header is written and
// before its content is read, until the test ends.
func SetArchiveHook(t interface{ Cleanup(func()) }, f func(path string)) {
	archiveHook = f
	t.Cleanup(func() { archiveHook = nil })
}
