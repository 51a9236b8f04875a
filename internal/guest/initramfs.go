package guest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cavaliergopher/cpio"
	"github.com/google/renameio/v2"
)

// ModuleListPath is where BuildInitramfs records the modules to load, in
// order, one absolute guest path per line. The guest has no depmod output
// and no modprobe, so the order is decided on the host and simply followed.
const ModuleListPath = "/etc/agentkernel/modules"

// File is one entry of an initramfs.
type File struct {
	// Path inside the guest, e.g. "/init". Cleaned; may not contain "..".
	Path string
	// Mode holds the permission bits, including setuid, setgid and sticky;
	// with fs.ModeDir set the entry is a directory (its Data and Source are
	// ignored).
	Mode fs.FileMode
	// Source, when set, is a host file copied in (streamed, so large module
	// trees do not have to sit in memory). Otherwise Data is the content.
	Source string
	Data   []byte
	// Link, when set, makes the entry a symbolic link with this target;
	// Mode (but for an optional fs.ModeSymlink), Source and Data are then
	// ignored, as links carry no permissions of their own.
	Link string
}

// WriteInitramfs writes files as a gzip-compressed newc cpio archive, the
// format the kernel unpacks into its rootfs (gzip because every Debian
// kernel has CONFIG_RD_GZIP=y and Go's standard library writes it).
// Directories implied by the paths are emitted before their contents, since
// the kernel's unpacker does not create missing parents. Owners are root and
// timestamps zero, so the same inputs give the same bytes.
func WriteInitramfs(w io.Writer, files []File) error {
	zw := gzip.NewWriter(w)
	if err := writeCPIO(zw, files); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return nil
}

// writeCPIO writes files as an uncompressed newc archive, planned as
// WriteInitramfs describes.
func writeCPIO(w io.Writer, files []File) error {
	entries, err := planEntries(files)
	if err != nil {
		return err
	}
	cw := cpio.NewWriter(w)
	for _, e := range entries {
		if err := writeEntry(cw, e); err != nil {
			return fmt.Errorf("initramfs: %s: %w", e.Path, err)
		}
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return nil
}

// planEntries validates files and inserts the implied parent directories.
// The result uses archive names: relative, no leading "/".
func planEntries(files []File) ([]File, error) {
	explicitDirs := make(map[string]fs.FileMode)
	clean := make([]File, 0, len(files))
	for _, f := range files {
		name, err := archiveName(f.Path)
		if err != nil {
			return nil, err
		}
		f.Path = name
		switch typ := f.Mode.Type(); {
		case f.Link != "":
			if typ != 0 && typ != fs.ModeSymlink {
				return nil, fmt.Errorf("initramfs: %s: a link cannot have file type %v", name, typ)
			}
			if strings.ContainsRune(f.Link, 0) {
				return nil, fmt.Errorf("initramfs: %s: NUL in link target", name)
			}
			f.Mode = fs.ModeSymlink | 0o777
		case typ == fs.ModeDir:
			explicitDirs[name] = f.Mode
		case typ != 0:
			return nil, fmt.Errorf("initramfs: %s: unsupported file type %v", name, typ)
		}
		clean = append(clean, f)
	}
	// isDir maps each path emitted to whether it is a directory: nothing
	// may go under a file, nor under a link, through which the unpacker
	// would write wherever the link points.
	isDir := make(map[string]bool)
	var out []File
	var addDir func(dir string) error
	addDir = func(dir string) error {
		if dir == "." {
			return nil
		}
		if d, seen := isDir[dir]; seen {
			if !d {
				return fmt.Errorf("initramfs: %s: used as a directory but listed as a file or link", dir)
			}
			return nil
		}
		if err := addDir(path.Dir(dir)); err != nil {
			return err
		}
		mode, ok := explicitDirs[dir]
		if !ok {
			mode = fs.ModeDir | 0o755
		}
		isDir[dir] = true
		out = append(out, File{Path: dir, Mode: mode})
		return nil
	}
	for _, f := range clean {
		if err := addDir(path.Dir(f.Path)); err != nil {
			return nil, err
		}
		if f.Mode.IsDir() {
			if err := addDir(f.Path); err != nil {
				return nil, err
			}
			continue
		}
		if _, seen := isDir[f.Path]; seen {
			return nil, fmt.Errorf("initramfs: %s: listed twice", f.Path)
		}
		isDir[f.Path] = false
		out = append(out, f)
	}
	return out, nil
}

func archiveName(p string) (string, error) {
	if p == "" {
		return "", errors.New("initramfs: empty path")
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("initramfs: %s: path contains ..", p)
		}
	}
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" {
		return "", fmt.Errorf("initramfs: %s: is the root", p)
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("initramfs: %q: NUL in path", p)
	}
	return name, nil
}

func writeEntry(cw *cpio.Writer, f File) error {
	perm := cpio.FileMode(f.Mode.Perm())
	if f.Mode&fs.ModeSetuid != 0 {
		perm |= cpio.ModeSetuid
	}
	if f.Mode&fs.ModeSetgid != 0 {
		perm |= cpio.ModeSetgid
	}
	if f.Mode&fs.ModeSticky != 0 {
		perm |= cpio.ModeSticky
	}
	if f.Mode.IsDir() {
		return cw.WriteHeader(&cpio.Header{Name: f.Path, Mode: cpio.TypeDir | perm, Links: 2})
	}
	if f.Link != "" {
		// newc stores a link's target as its content.
		if err := cw.WriteHeader(&cpio.Header{Name: f.Path, Mode: cpio.TypeSymlink | 0o777, Size: int64(len(f.Link)), Links: 1}); err != nil {
			return err
		}
		_, err := io.WriteString(cw, f.Link)
		return err
	}
	var r io.Reader
	size := int64(len(f.Data))
	if f.Source != "" {
		src, err := os.Open(f.Source)
		if err != nil {
			return err
		}
		defer src.Close()
		st, err := src.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("source %s is not a regular file", f.Source)
		}
		r, size = src, st.Size()
	} else {
		r = bytes.NewReader(f.Data)
	}
	if err := cw.WriteHeader(&cpio.Header{Name: f.Path, Mode: cpio.TypeReg | perm, Size: size, Links: 1}); err != nil {
		return err
	}
	n, err := io.Copy(cw, r)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("source changed while copying: %d of %d bytes", n, size)
	}
	return nil
}

// BuildInitramfs writes to out an initramfs for k holding files (such as
// Userland's) and the given modules (paths relative to k.ModulesDir, as
// Modules returns them) under /lib/modules/VERSION, with ModuleListPath
// naming them in load order. It adds no /init: the microVM backend appends
// the agent at each start. out is replaced atomically, so a VMM starting
// concurrently never sees a half-written archive.
func BuildInitramfs(ctx context.Context, k *Kernel, modules []string, files []File, out string) error {
	if len(modules) > 0 && (k == nil || k.Version == "" || k.ModulesDir == "") {
		return errors.New("initramfs: modules given but the kernel has no version or modules directory")
	}
	files = slices.Clip(files)
	var list strings.Builder
	for _, m := range modules {
		if m == "" || path.IsAbs(m) || strings.Contains("/"+m+"/", "/../") {
			return fmt.Errorf("initramfs: module path %q must be relative to the modules directory", m)
		}
		guestPath := path.Join("/lib/modules", k.Version, m)
		files = append(files, File{Path: guestPath, Mode: 0o644, Source: filepath.Join(k.ModulesDir, filepath.FromSlash(m))})
		list.WriteString(guestPath + "\n")
	}
	files = append(files, File{Path: ModuleListPath, Mode: 0o644, Data: []byte(list.String())})
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return writeAtomic(out, 0o644, func(w io.Writer) error {
		return WriteInitramfs(ctxWriter{ctx, w}, files)
	})
}

// writeAtomic replaces path with what write produces, or leaves it as it
// was if write fails.
func writeAtomic(path string, perm fs.FileMode, write func(io.Writer) error) error {
	pf, err := renameio.NewPendingFile(path, renameio.WithPermissions(perm))
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer pf.Cleanup()
	if err := write(pf); err != nil {
		return err
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// ctxWriter lets a cancelled context stop a long archive write between
// chunks instead of only before it starts.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
