package detect

// Result is a detection outcome: the image and a human-readable reason
// ("command pytest", "project file go.mod", "agentkernel.toml
// sandbox.base_image", ...), meant for a line such as
// "image python:3.12-alpine (command pytest)".
type Result struct {
	Image  string
	Reason string
}

// Image picks the image for running argv in project directory dir ("" is the
// current directory). It consults, in order, and the first that chooses wins:
//
//  1. agentkernel.toml in dir: [sandbox] base_image, else [sandbox] runtime.
//     Configuration wins over detection, as an explicit --image wins over it.
//  2. The command: argv[0]'s base name in the command table. Wrappers are
//     looked through — env (options, NAME=value, -S), exec, command, nohup,
//     nice, time, timeout, stdbuf, and a shell's -c script (`sh -c`,
//     `bash -lc`), whose first simple command that is in the table decides
//     (`cd app && pytest` is Python). A runtime's own launcher keeps its
//     runtime and names what it runs: `uv run pytest`, `npx jest`,
//     `python -m pytest`, `bundle exec rspec`.
//  3. Project files in dir (see Table; first match in table order).
//  4. dir's Procfile: the first process whose command is in the table.
//  5. A bare shell (`bash script.sh`), from argv or else from the Procfile:
//     alpine:3.20.
//
// None of these → ok is false; the caller picks the fallback (the Rust
// agentkernel uses DefaultImage). Errors come only from reading dir: an
// agentkernel.toml that does not parse or names an unknown runtime (wrapping
// errdefs.ErrInvalidArgument), or a file that exists but cannot be read.
//
// The Rust agentkernel's order for `agentkernel run` (its src/main.rs:
// --image > --config > --template > command > ./agentkernel.toml > project
// files > Procfile > alpine:3.20) puts the command before agentkernel.toml;
// here the project's configuration wins, so a team's pinned image is not
// overridden by whatever command an agent happens to run. Other deliberate
// differences, each because it picks an image that can run the command
// where the Rust one cannot:
//   - the Rust agentkernel matches argv[0] only, without wrappers;
//   - it treats sh, bash, zsh and ash like any command (alpine:3.20, even in
//     a Node project); here a bare shell is step 5, after the project;
//   - an agentkernel.toml that sets neither base_image nor runtime gives
//     alpine:3.20 there; here detection goes on to the project files;
//   - it maps an unknown [sandbox] runtime to alpine:3.20; here it is an error;
//   - Procfile commands are read as shell commands (wrappers, NAME=value).
//
// Image reads at most agentkernel.toml, Procfile and one listing of dir
// (stat-ing symlinks in it); it runs nothing.
func Image(argv []string, dir string) (Result, bool, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return Result{}, false, err
	}
	if r, ok := cfg.Image(); ok {
		return r, true, nil
	}

	var weak *Result
	if m, ok := resolveArgv(argv, nil, 0); ok {
		r := Result{Image: m.rt.image, Reason: "command " + m.describe()}
		if !m.weak() {
			return r, true, nil
		}
		weak = &r
	}

	if r, ok, err := fromProjectFiles(dir); err != nil || ok {
		return r, ok, err
	}

	m, proc, ok, err := procfileMatch(dir)
	if err != nil {
		return Result{}, false, err
	}
	if ok && !m.weak() {
		return Result{Image: m.rt.image, Reason: procfileReason(proc, m)}, true, nil
	}
	if weak != nil {
		return *weak, true, nil
	}
	if ok {
		return Result{Image: m.rt.image, Reason: procfileReason(proc, m)}, true, nil
	}
	return Result{}, false, nil
}

func procfileReason(proc string, m match) string {
	return ProcfileName + " " + proc + ": " + m.describe()
}

// Command picks the image from the command alone, for callers that have
// no project directory (the HTTP API and MCP: the project is on the
// client's machine, not the server's).
func Command(argv []string) (Result, bool) {
	m, ok := resolveArgv(argv, nil, 0)
	if !ok {
		return Result{}, false
	}
	return Result{Image: m.rt.image, Reason: "command " + m.describe()}, true
}
