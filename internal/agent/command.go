package agent

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
)

// defaultPath is the PATH every process starts with unless the spec sets one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// oomScoreAdj is written to every child's /proc/PID/oom_score_adj so that in
// a memory-limited sandbox the kernel's OOM killer picks the workload, not
// the agent. Raising it needs no privilege (lowering would).
const oomScoreAdj = "500"

// parseExecSpec decodes and checks an ExecSpec from the wire. Unknown fields
// are ignored so a newer host can talk to an older agent.
func parseExecSpec(b []byte) (v1.ExecSpec, error) {
	var spec v1.ExecSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return v1.ExecSpec{}, v1.Errorf(v1.CodeInvalidArgument, "decoding exec spec: %v", err)
	}
	if err := checkExecSpec(&spec); err != nil {
		return v1.ExecSpec{}, err
	}
	return spec, nil
}

// checkExecSpec rejects what execve or the agent could not honour.
func checkExecSpec(spec *v1.ExecSpec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	for _, a := range spec.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return v1.Errorf(v1.CodeInvalidArgument, "argument contains a NUL byte")
		}
	}
	for _, e := range spec.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" || strings.IndexByte(e, 0) >= 0 {
			return v1.Errorf(v1.CodeInvalidArgument, "invalid environment entry %q (want KEY=VALUE)", e)
		}
	}
	if spec.Dir != "" && !isCleanAbs(spec.Dir) {
		return v1.Errorf(v1.CodeInvalidArgument, "working directory %q is not a clean absolute path", spec.Dir)
	}
	return nil
}

// command is an ExecSpec resolved against the sandbox: ready to fork.
type command struct {
	path string // resolved executable
	args []string
	env  []string
	dir  string
	cred *syscall.Credential
	id   identity
}

// prepare resolves user, environment, working directory and executable.
func (s *Server) prepare(spec *v1.ExecSpec) (*command, error) {
	select {
	case <-s.stopping:
		return nil, v1.Errorf(v1.CodeUnavailable, "agent is shutting down")
	default:
	}
	id, err := readUserDB(s.etcDir).resolve(spec.User, os.Geteuid())
	if err != nil {
		return nil, err
	}
	home := id.home
	if home == "" {
		home = "/"
	}
	dir := spec.Dir
	if dir == "" {
		dir = "/"
		if st, err := os.Stat(home); err == nil && st.IsDir() {
			dir = home
		}
	} else if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, v1.Errorf(v1.CodeInvalidArgument, "working directory %q does not exist or is not a directory", dir)
	}

	defaults := []string{"PATH=" + defaultPath, "HOME=" + home}
	if id.name != "" {
		defaults = append(defaults, "USER="+id.name, "LOGNAME="+id.name)
	}
	if h, err := os.Hostname(); err == nil {
		defaults = append(defaults, "HOSTNAME="+h)
	}
	if spec.TTY {
		defaults = append(defaults, "TERM=xterm-256color")
	}
	env := v1.MergeEnv(defaults, spec.Env)

	path, err := lookPath(spec.Args[0], envValue(env, "PATH"), dir)
	if err != nil {
		return nil, err
	}
	return &command{path: path, args: spec.Args, env: env, dir: dir, cred: credential(id), id: id}, nil
}

// credential returns nil when the child can simply inherit the agent's
// identity, which also avoids setgroups where a user namespace denies it.
func credential(id identity) *syscall.Credential {
	euid, egid := os.Geteuid(), os.Getegid()
	if id.uid == euid && id.gid == egid && (euid != 0 || len(id.groups) == 0) {
		return nil
	}
	groups := make([]uint32, 0, len(id.groups))
	for _, g := range id.groups {
		groups = append(groups, uint32(g))
	}
	return &syscall.Credential{
		Uid:         uint32(id.uid),
		Gid:         uint32(id.gid),
		Groups:      groups, // empty, not nil: drop the agent's own groups
		NoSetGroups: setgroupsDenied(),
	}
}

// setgroupsDenied reports whether this user namespace forbids setgroups(2),
// in which case asking for it would make every exec fail.
func setgroupsDenied() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(b)) == "deny"
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

// lookPath finds file the way a shell would, using the PATH of the process's
// own environment (not the agent's). Relative names resolve against dir,
// the process's working directory.
func lookPath(file, pathEnv, dir string) (string, error) {
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := checkExecutable(p, file); err != nil {
			return "", err
		}
		return p, nil
	}
	var notExec error
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		p := filepath.Join(d, file)
		st, err := os.Stat(p)
		if err != nil || st.IsDir() {
			continue // shells skip directories on PATH silently
		}
		err = checkExecutable(p, file)
		if err == nil {
			return p, nil
		}
		if notExec == nil {
			notExec = err
		}
	}
	if notExec != nil {
		return "", notExec
	}
	return "", v1.Errorf(v1.CodeCommandNotFound, "%s: command not found", file)
}

func checkExecutable(p, name string) error {
	st, err := os.Stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return v1.Errorf(v1.CodeCommandNotFound, "%s: no such file or directory", name)
	case err != nil:
		return v1.Errorf(v1.CodeNotExecutable, "%s: %v", name, unwrapPathError(err))
	case st.IsDir():
		return v1.Errorf(v1.CodeNotExecutable, "%s: is a directory", name)
	case st.Mode().Perm()&0o111 == 0:
		return v1.Errorf(v1.CodeNotExecutable, "%s: permission denied", name)
	}
	return nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// stdio are the child's descriptors 0, 1 and 2.
type stdio [3]uintptr

// spawn forks and execs c through the reaper. With tty set, the child gets
// a new session with fd 0 as its controlling terminal; otherwise its own
// process group. Either way its pid is its process group id.
func (s *Server) spawn(c *command, fds stdio, tty bool) (int, <-chan exitInfo, error) {
	sys := &syscall.SysProcAttr{Credential: c.cred}
	if tty {
		sys.Setsid, sys.Setctty, sys.Ctty = true, true, 0
	} else {
		sys.Setpgid = true
	}
	attr := &syscall.ProcAttr{Dir: c.dir, Env: c.env, Files: fds[:], Sys: sys}
	pid, exit, err := s.reaper.start(func() (int, error) {
		return syscall.ForkExec(c.path, c.args, attr)
	})
	if err != nil {
		return 0, nil, startError(c, err)
	}
	if s.ownProc {
		_ = os.WriteFile("/proc/"+strconv.Itoa(pid)+"/oom_score_adj", []byte(oomScoreAdj), 0)
	}
	return pid, exit, nil
}

// startError maps a fork/exec failure to the protocol's codes, as a shell
// would report it (127 not found, 126 cannot execute).
func startError(c *command, err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return v1.Errorf(v1.CodeInternal, "starting %s: %v", c.args[0], err)
	}
	switch errno {
	case unix.ENOENT:
		// The file was found, so this is its interpreter or loader.
		return v1.Errorf(v1.CodeCommandNotFound, "starting %s: %v (missing interpreter?)", c.args[0], err)
	case unix.EPERM:
		if c.cred != nil {
			return v1.Errorf(v1.CodePermissionDenied, "starting %s as uid %d: %v", c.args[0], c.id.uid, err)
		}
		return v1.Errorf(v1.CodeNotExecutable, "starting %s: %v", c.args[0], err)
	case unix.EACCES, unix.ENOEXEC, unix.EISDIR, unix.ETXTBSY, unix.ELIBBAD, unix.ENOTDIR:
		return v1.Errorf(v1.CodeNotExecutable, "starting %s: %v", c.args[0], err)
	}
	return v1.Errorf(v1.CodeInternal, "starting %s: %v", c.args[0], err)
}

// exitStatus converts a wait status to the protocol's form.
func exitStatus(ws unix.WaitStatus) v1.ExitStatus {
	switch {
	case ws.Exited():
		return v1.ExitStatus{Code: ws.ExitStatus()}
	case ws.Signaled():
		sig := int(ws.Signal())
		return v1.ExitStatus{Code: 128 + sig, Signal: sig}
	}
	return v1.ExitStatus{Code: 255}
}

// timedOutStatus is reported for a process killed at its deadline.
func timedOutStatus() v1.ExitStatus {
	return v1.ExitStatus{Code: 128 + int(unix.SIGKILL), Signal: int(unix.SIGKILL), TimedOut: true}
}

func isCleanAbs(p string) bool {
	return filepath.IsAbs(p) && filepath.Clean(p) == p && strings.IndexByte(p, 0) < 0
}

// devNull opens the child's stdin when it gets none. If the sandbox has no
// /dev/null, a pipe whose write end is closed reads as EOF just the same.
func devNull() (*os.File, error) {
	if f, err := os.Open(os.DevNull); err == nil {
		return f, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	w.Close()
	return r, nil
}

// procIsOurs reports whether /proc shows this pid namespace. If it shows
// another (a new pid namespace without its own /proc mounted), /proc/PID
// names some other process, which must not be touched.
func procIsOurs() bool {
	self, err := os.Readlink("/proc/self")
	return err == nil && self == strconv.Itoa(os.Getpid())
}
