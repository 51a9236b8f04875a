package agent

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/xattr"
)

// GET /v1/archive streams a tar of a directory tree (PROTOCOL.md, Archive).
// The tree is walked through directory descriptors, never following a
// symlink, so a tree changing underneath cannot lead the walk elsewhere.

// pseudoDirs are the kernel's interfaces in a sandbox's root: each is
// archived as an empty directory, and archiving one of them (or a path
// beneath) is refused. A variable for tests.
var pseudoDirs = []string{"/proc", "/sys", "/dev"}

// archiveHook, when set (tests), runs after a regular file's header was
// written and before its content is read.
var archiveHook func(path string)

// Filesystem types without data of their own, as reported by statfs(2):
// a mount of one anywhere in the tree is archived as an empty directory
// (or, mounted on a file, left out).
var pseudoFS = map[uint32]bool{
	unix.PROC_SUPER_MAGIC: true, unix.SYSFS_MAGIC: true, unix.DEVPTS_SUPER_MAGIC: true,
	unix.CGROUP_SUPER_MAGIC: true, unix.CGROUP2_SUPER_MAGIC: true, 0x19800202: true, // mqueue
	unix.DEBUGFS_MAGIC: true, unix.TRACEFS_MAGIC: true, unix.SECURITYFS_MAGIC: true,
	unix.BPF_FS_MAGIC: true, unix.SELINUX_MAGIC: true, unix.SMACK_MAGIC: true, unix.AAFS_MAGIC: true,
	unix.PSTOREFS_MAGIC: true, unix.EFIVARFS_MAGIC: true, unix.BINFMTFS_MAGIC: true,
	unix.NSFS_MAGIC: true, unix.RDTGROUP_SUPER_MAGIC: true, unix.BINDERFS_SUPER_MAGIC: true,
	unix.HUGETLBFS_MAGIC: true, 0x62656570: true /* configfs */, 0x65735543: true, /* fusectl */
}

// maxSkippedPaths bounds the paths named in the X-Archive-Skipped trailer.
const maxSkippedPaths = 10

// archiveBuffer is how much tar output is collected before a write to the stream.
const archiveBuffer = 64 << 10

func (s *Server) handleArchive(w http.ResponseWriter, r *http.Request) {
	p, err := queryPath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if d := underPseudoDir(p); d != "" {
		writeError(w, v1.Errorf(v1.CodeInvalidArgument, "archiving %s: %s is a kernel interface, not data", p, d))
		return
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		writeError(w, fileError("archiving", p, &os.PathError{Op: "open", Path: p, Err: err}))
		return
	}
	root := os.NewFile(uintptr(fd), p)
	defer root.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		writeError(w, fileError("archiving", p, err))
		return
	}
	if isPseudoFS(fd) {
		writeError(w, v1.Errorf(v1.CodeInvalidArgument, "archiving %s: a kernel interface (pseudo filesystem), not data", p))
		return
	}

	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Trailer", v1.TrailerArchiveSkipped)
	w.WriteHeader(http.StatusOK)
	// Send the headers now: from here on a failure is a reset stream.
	_ = http.NewResponseController(w).Flush()
	bw := bufio.NewWriterSize(w, archiveBuffer)
	a := &archiver{ctx: r.Context(), tw: tar.NewWriter(bw), links: make(map[fileID]string)}
	err = a.root(root, p, &st)
	if err == nil {
		err = a.tw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		// Never let the client take a short tar for a whole one: reset
		// the stream instead of ending it.
		if r.Context().Err() == nil {
			s.log.Error("archive aborted", "path", p, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	if a.skipped.Count > 0 {
		s.log.Warn("archive left out unreadable entries", "path", p, "count", a.skipped.Count, "first", a.skipped.Paths)
		b, _ := json.Marshal(a.skipped)
		w.Header().Set(v1.TrailerArchiveSkipped, string(b))
	}
}

// underPseudoDir returns the pseudo directory p is or lies beneath, or "".
func underPseudoDir(p string) string {
	for _, d := range pseudoDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return d
		}
	}
	return ""
}

func isPseudoFS(fd int) bool {
	var sfs unix.Statfs_t
	return unix.Fstatfs(fd, &sfs) == nil && pseudoFS[uint32(sfs.Type)]
}

// fileID identifies an inode, to store hardlinked files once.
type fileID struct{ dev, ino uint64 }

// archiver writes one tree as a tar.
type archiver struct {
	ctx     context.Context
	tw      *tar.Writer
	links   map[fileID]string // first archived name of inodes with several links
	skipped v1.ArchiveSkipped
}

// root archives the open directory dir, found at abs, as "./" and its
// entries beneath.
func (a *archiver) root(dir *os.File, abs string, st *unix.Stat_t) error {
	hdr := header(st, "./", tar.TypeDir)
	if err := a.addXattrs(hdr, int(dir.Fd()), abs); err != nil {
		return err
	}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return err
	}
	return a.dir(dir, abs, "", uint64(st.Dev))
}

// dir archives the entries of the open directory dir (at abs, named rel in
// the archive, on device dev) in name order, recursively.
func (a *archiver) dir(dir *os.File, abs, rel string, dev uint64) error {
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", abs, err)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		if err := a.entry(int(dir.Fd()), path.Join(abs, name), rel+name, name, dev); err != nil {
			return err
		}
	}
	return nil
}

// entry archives name in the directory dirfd (on device dev): at abs in the
// sandbox, named rel in the archive. An entry removed meanwhile is left
// out; one the agent may not read is left out and counted.
func (a *archiver) entry(dirfd int, abs, rel, name string, dev uint64) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return a.failed("stat", abs, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return a.subdir(dirfd, abs, rel, name, dev, &st)
	case unix.S_IFREG:
		return a.file(dirfd, abs, rel, name, dev, &st)
	case unix.S_IFSOCK:
		return nil // a socket is an endpoint, not data
	}
	if linked, err := a.link(&st, rel); linked || err != nil {
		return err
	}
	var hdr *tar.Header
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		target, err := readlinkat(dirfd, name, int(st.Size))
		if err != nil {
			return a.failed("reading link", abs, err)
		}
		hdr = header(&st, rel, tar.TypeSymlink)
		hdr.Linkname = target
	case unix.S_IFIFO:
		hdr = header(&st, rel, tar.TypeFifo)
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr = header(&st, rel, tar.TypeChar)
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
	default:
		return nil
	}
	return a.write(hdr, &st)
}

func (a *archiver) subdir(dirfd int, abs, rel, name string, dev uint64, st *unix.Stat_t) error {
	hdr := header(st, rel+"/", tar.TypeDir)
	if underPseudoDir(abs) != "" {
		return a.tw.WriteHeader(hdr)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if isDenied(err) {
			// Keep the directory itself (its metadata was readable).
			a.skip(abs)
			return a.tw.WriteHeader(hdr)
		}
		return a.failed("opening", abs, err)
	}
	d := os.NewFile(uintptr(fd), abs)
	defer d.Close()
	if err := unix.Fstat(fd, st); err != nil {
		return fmt.Errorf("stat %s: %w", abs, err)
	}
	hdr = header(st, rel+"/", tar.TypeDir)
	if uint64(st.Dev) != dev && isPseudoFS(fd) {
		return a.tw.WriteHeader(hdr)
	}
	if err := a.addXattrs(hdr, fd, abs); err != nil {
		return err
	}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return err
	}
	return a.dir(d, abs, rel+"/", uint64(st.Dev))
}

func (a *archiver) file(dirfd int, abs, rel, name string, dev uint64, st *unix.Stat_t) error {
	if linked, err := a.link(st, rel); linked || err != nil {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return a.failed("opening", abs, err)
	}
	f := os.NewFile(uintptr(fd), abs)
	defer f.Close()
	if err := unix.Fstat(fd, st); err != nil {
		return fmt.Errorf("stat %s: %w", abs, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		a.skip(abs) // replaced by something else since it was listed
		return nil
	}
	if uint64(st.Dev) != dev && isPseudoFS(fd) {
		return nil // a kernel file mounted over this one
	}
	if linked, err := a.link(st, rel); linked || err != nil { // replaced by another link of an archived file
		return err
	}
	hdr := header(st, rel, tar.TypeReg)
	hdr.Size = st.Size
	if err := a.addXattrs(hdr, fd, abs); err != nil {
		return err
	}
	if err := a.write(hdr, st); err != nil {
		return err
	}
	if archiveHook != nil {
		archiveHook(abs)
	}
	n, err := io.CopyN(a.tw, f, hdr.Size)
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%s shrank while being archived (%d of %d bytes read)", abs, n, hdr.Size)
	case err != nil:
		return fmt.Errorf("archiving %s: %w", abs, err)
	}
	return nil
}

// link writes rel as a hardlink if st is an inode with several links that
// was archived before, and reports whether it did.
func (a *archiver) link(st *unix.Stat_t, rel string) (bool, error) {
	if st.Nlink < 2 {
		return false, nil
	}
	first, ok := a.links[fileID{uint64(st.Dev), uint64(st.Ino)}]
	if !ok {
		return false, nil
	}
	hdr := header(st, rel, tar.TypeLink)
	hdr.Linkname = first
	return true, a.tw.WriteHeader(hdr)
}

// write writes hdr and remembers a name for an inode with several links.
func (a *archiver) write(hdr *tar.Header, st *unix.Stat_t) error {
	if err := a.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if st.Nlink > 1 {
		a.links[fileID{uint64(st.Dev), uint64(st.Ino)}] = hdr.Name
	}
	return nil
}

// failed handles an error about the entry at abs: a vanished entry is
// left out, an unreadable one left out and counted, anything else ends the
// archive.
func (a *archiver) failed(op, abs string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case isDenied(err):
		a.skip(abs)
		return nil
	}
	return fmt.Errorf("%s %s: %w", op, abs, err)
}

func isDenied(err error) bool {
	return errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}

func (a *archiver) skip(abs string) {
	a.skipped.Count++
	if len(a.skipped.Paths) < maxSkippedPaths {
		a.skipped.Paths = append(a.skipped.Paths, abs)
	}
}

// header is the tar header common to every type: name, permission bits
// with setuid/setgid/sticky, owner and modification time (PAX keeps its
// nanoseconds).
func header(st *unix.Stat_t, name string, typ byte) *tar.Header {
	return &tar.Header{
		Typeflag: typ,
		Name:     name,
		Mode:     int64(st.Mode & 0o7777),
		Uid:      int(st.Uid),
		Gid:      int(st.Gid),
		ModTime:  time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)),
		Format:   tar.FormatPAX,
	}
}

// addXattrs records the user.* extended attributes of the open file fd as
// PAX records (SCHILY.xattr.NAME), as GNU tar and bsdtar do.
func (a *archiver) addXattrs(hdr *tar.Header, fd int, abs string) error {
	names, err := xattr.List(func(b []byte) (int, error) { return unix.Flistxattr(fd, b) })
	if err != nil {
		return fmt.Errorf("listing extended attributes of %s: %w", abs, err)
	}
	for _, name := range names {
		if !strings.HasPrefix(name, "user.") || strings.Contains(name, "=") {
			continue // a PAX record key cannot hold "="
		}
		v, err := xattr.Get(func(b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("reading extended attribute %s of %s: %w", name, abs, err)
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = make(map[string]string)
		}
		hdr.PAXRecords["SCHILY.xattr."+name] = string(v)
	}
	return nil
}

// readlinkat reads a symlink's target; size is its lstat size (a hint).
func readlinkat(dirfd int, name string, size int) (string, error) {
	buf := make([]byte, max(size, 63)+1)
	for {
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}
