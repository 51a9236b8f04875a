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
	// Mode holds the permission bits; with fs.ModeDir set the entry is a
	// directory (its Data and Source are ignored).
	Mode fs.FileMode
	// Source, when set, is a host file copied in (streamed, so large module
	// trees do not have to sit in memory). Otherwise Data is the content.
	Source string
	Data   []byte
}

// WriteInitramfs writes files as a gzip-compressed newc cpio archive, the
// format the kernel unpacks into its rootfs (gzip because every Debian
// kernel has CONFIG_RD_GZIP=y and Go's standard library writes it).
// Directories implied by the paths are emitted before their contents, since
// the kernel's unpacker does not create missing parents. Owners are root and
// timestamps zero, so the same inputs give the same bytes.
func WriteInitramfs(w io.Writer, files []File) error {
	entries, err := planEntries(files)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(w)
	cw := cpio.NewWriter(zw)
	for _, e := range entries {
		if err := writeEntry(cw, e); err != nil {
			return fmt.Errorf("initramfs: %s: %w", e.Path, err)
		}
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
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
		if f.Mode&fs.ModeType != 0 && !f.Mode.IsDir() {
			return nil, fmt.Errorf("initramfs: %s: unsupported file type %v", f.Path, f.Mode.Type())
		}
		if f.Mode.IsDir() {
			explicitDirs[name] = f.Mode
		}
		clean = append(clean, f)
	}
	seen := make(map[string]bool)
	var out []File
	var addDir func(dir string)
	addDir = func(dir string) {
		if dir == "." || seen[dir] {
			return
		}
		addDir(path.Dir(dir))
		mode, ok := explicitDirs[dir]
		if !ok {
			mode = fs.ModeDir | 0o755
		}
		seen[dir] = true
		out = append(out, File{Path: dir, Mode: mode})
	}
	for _, f := range clean {
		addDir(path.Dir(f.Path))
		if f.Mode.IsDir() {
			addDir(f.Path)
			continue
		}
		if seen[f.Path] {
			return nil, fmt.Errorf("initramfs: %s: listed twice", f.Path)
		}
		seen[f.Path] = true
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

// BuildInitramfs writes to out the initramfs that boots k into the agent:
// initBinary as /init, the given modules (paths relative to k.ModulesDir, as
// Modules returns them) under /lib/modules/VERSION, and ModuleListPath
// naming them in load order. out is replaced atomically, so a VMM starting
// concurrently never sees a half-written archive.
func BuildInitramfs(ctx context.Context, k *Kernel, initBinary string, modules []string, out string) error {
	if k == nil || k.Version == "" || k.ModulesDir == "" {
		return errors.New("initramfs: kernel has no version or modules directory")
	}
	files := []File{{Path: "/init", Mode: 0o755, Source: initBinary}}
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

	pf, err := renameio.NewPendingFile(out, renameio.WithPermissions(0o644))
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	defer pf.Cleanup()
	if err := WriteInitramfs(ctxWriter{ctx, pf}, files); err != nil {
		return err
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
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
