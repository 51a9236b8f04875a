package agent

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
)

// File routes carry raw bodies. The agent checks only that paths are clean
// and absolute; which paths a caller may touch is the host's policy.

// queryPath returns the request's ?path=, clean and absolute.
func queryPath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", v1.Errorf(v1.CodeInvalidArgument, "missing path")
	}
	if !isCleanAbs(p) {
		return "", v1.Errorf(v1.CodeInvalidArgument, "path %q is not clean and absolute", p)
	}
	return p, nil
}

// queryMode parses an octal ?mode= (permission, setuid/setgid/sticky bits).
func queryMode(r *http.Request, def fs.FileMode) (fs.FileMode, error) {
	s := r.URL.Query().Get("mode")
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, v1.Errorf(v1.CodeInvalidArgument, "invalid mode %q (want octal, e.g. 0644)", s)
	}
	return unixMode(uint32(n)), nil
}

func queryBool(r *http.Request, key string) bool {
	b, _ := strconv.ParseBool(r.URL.Query().Get(key))
	return b
}

// unixMode converts permission bits as chmod(2) takes them to an fs.FileMode.
func unixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&syscall.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&syscall.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&syscall.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// modeBits is the inverse of unixMode.
func modeBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= syscall.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		b |= syscall.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		b |= syscall.S_ISVTX
	}
	return b
}

// fileError maps an OS error to the protocol's codes.
func fileError(op, path string, err error) error {
	code := v1.CodeInternal
	switch {
	case errors.Is(err, fs.ErrNotExist):
		code = v1.CodeNotFound
	case errors.Is(err, syscall.ENOTEMPTY): // before ErrExist, which it also matches
		code = v1.CodeFailedPrecondition
	case errors.Is(err, fs.ErrExist):
		code = v1.CodeAlreadyExists
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		code = v1.CodePermissionDenied
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR),
		errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.ELOOP):
		code = v1.CodeInvalidArgument
	}
	return v1.Errorf(code, "%s %s: %v", op, path, unwrapPathError(err))
}

func (s *Server) handleReadFile(w http.ResponseWriter, r *http.Request) {
	p, err := queryPath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	f, err := os.Open(p)
	if err != nil {
		writeError(w, fileError("reading", p, err))
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		writeError(w, fileError("reading", p, err))
		return
	}
	if st.IsDir() {
		writeError(w, v1.Errorf(v1.CodeInvalidArgument, "reading %s: is a directory", p))
		return
	}
	if !st.Mode().IsRegular() {
		// A fifo or device could block or never end.
		writeError(w, v1.Errorf(v1.CodeInvalidArgument, "reading %s: not a regular file", p))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(v1.HeaderFileMode, "0"+strconv.FormatUint(uint64(modeBits(st.Mode())), 8))
	w.WriteHeader(http.StatusOK)
	// No Content-Length: the file may change while it streams.
	_, _ = io.Copy(w, f)
}

// handleWriteFile writes atomically: a temp file in the same directory,
// fsync, then rename over the target, so readers see the old or the new
// content, never a part. An existing file's owner is kept.
func (s *Server) handleWriteFile(w http.ResponseWriter, r *http.Request) {
	p, err := queryPath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	mode, err := queryMode(r, 0o644)
	if err != nil {
		writeError(w, err)
		return
	}
	if p == "/" {
		writeError(w, v1.Errorf(v1.CodeInvalidArgument, "writing /: is a directory"))
		return
	}
	dir := filepath.Dir(p)
	if queryBool(r, "mkdirs") {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			writeError(w, fileError("creating directories for", p, err))
			return
		}
	}
	old, err := os.Lstat(p)
	if err == nil && old.IsDir() {
		writeError(w, v1.Errorf(v1.CodeInvalidArgument, "writing %s: is a directory", p))
		return
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(p)+".agentkernel-*")
	if err != nil {
		writeError(w, fileError("writing", p, err))
		return
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, r.Body); err != nil {
		writeError(w, v1.Errorf(v1.CodeInvalidArgument, "writing %s: receiving body: %v", p, err))
		return
	}
	if err := tmp.Chmod(mode); err != nil { // explicit, so the umask does not apply
		writeError(w, fileError("writing", p, err))
		return
	}
	if old != nil && old.Mode().IsRegular() {
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			_ = tmp.Chown(int(st.Uid), int(st.Gid))
		}
	}
	if err := tmp.Sync(); err != nil {
		writeError(w, fileError("writing", p, err))
		return
	}
	if err := tmp.Close(); err != nil {
		writeError(w, fileError("writing", p, err))
		return
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		writeError(w, fileError("writing", p, err))
		return
	}
	done = true
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleRemove(w http.ResponseWriter, r *http.Request) {
	p, err := queryPath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if p == "/" {
		writeError(w, v1.Errorf(v1.CodeInvalidArgument, "refusing to remove /"))
		return
	}
	if _, err := os.Lstat(p); err != nil {
		writeError(w, fileError("removing", p, err))
		return
	}
	if queryBool(r, "recursive") {
		err = os.RemoveAll(p)
	} else {
		err = os.Remove(p)
	}
	if err != nil {
		writeError(w, fileError("removing", p, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleMkdir creates a directory. With parents, an existing directory is
// fine (mkdir -p); without, it is already_exists.
func (s *Server) handleMkdir(w http.ResponseWriter, r *http.Request) {
	p, err := queryPath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	mode, err := queryMode(r, 0o755)
	if err != nil {
		writeError(w, err)
		return
	}
	if queryBool(r, "parents") {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		err = os.MkdirAll(p, mode)
	} else {
		err = os.Mkdir(p, mode)
	}
	if err != nil {
		writeError(w, fileError("creating directory", p, err))
		return
	}
	if err := os.Chmod(p, mode); err != nil { // the umask applied to Mkdir
		writeError(w, fileError("creating directory", p, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleStat(w http.ResponseWriter, r *http.Request) {
	p, err := queryPath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	st, err := os.Lstat(p)
	if err != nil {
		writeError(w, fileError("stat", p, err))
		return
	}
	writeJSON(w, http.StatusOK, fileInfo(p, st))
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	p, err := queryPath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		writeError(w, fileError("listing", p, err))
		return
	}
	out := make([]v1.FileInfo, 0, len(entries))
	for _, e := range entries {
		full := filepath.Join(p, e.Name())
		st, err := os.Lstat(full)
		if err != nil {
			continue // removed while listing
		}
		out = append(out, fileInfo(full, st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
}

// fileInfo describes st, found at path, on the wire.
func fileInfo(path string, st fs.FileInfo) v1.FileInfo {
	fi := v1.FileInfo{
		Name:    st.Name(),
		Path:    path,
		Size:    st.Size(),
		Mode:    modeBits(st.Mode()),
		ModTime: st.ModTime(),
	}
	switch {
	case st.Mode().IsRegular():
		fi.Type = v1.TypeFile
	case st.IsDir():
		fi.Type = v1.TypeDir
	case st.Mode()&fs.ModeSymlink != 0:
		fi.Type = v1.TypeSymlink
		fi.Target, _ = os.Readlink(path)
	default:
		fi.Type = v1.TypeOther
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		fi.UID, fi.GID = int(sys.Uid), int(sys.Gid)
	}
	return fi
}
