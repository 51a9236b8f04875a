package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	agentv1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/sandbox"
	"github.com/agentkernel-go/agentkernel/internal/service"
)

func (a *app) newCpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy files between the host and a running sandbox",
		Long: `Cp copies a file or a directory tree into or out of a running sandbox. One of
SRC and DST is NAME:/absolute/path in the sandbox, the other a host path, or
"-" for stdin/stdout (a single file's content). If DST is an existing
directory, SRC is copied into it under its own name.

Each file is written whole or not at all. Symbolic links inside copied trees
are skipped (with a warning); ".." is not allowed in sandbox paths.`,
		Example: `  agentkernel cp ./src dev:/workspace
  agentkernel cp dev:/workspace/report.txt .
  agentkernel cp dev:/etc/os-release -`,
		Args: exactArgs(2, "SRC DST"),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			src, err := parseCpArg(args[0])
			if err != nil {
				return err
			}
			dst, err := parseCpArg(args[1])
			if err != nil {
				return err
			}
			switch {
			case src.sandbox != "" && dst.sandbox != "":
				return usagef("cp: copying between two sandboxes is not supported; copy through the host")
			case src.sandbox == "" && dst.sandbox == "":
				return usagef("cp: one of SRC and DST must be NAME:/path in a sandbox")
			}
			ctx := cmd.Context()
			mgr, err := a.manager(ctx)
			if err != nil {
				return err
			}
			c := &copier{ctx: ctx, mgr: mgr, app: a}
			if src.sandbox != "" {
				return c.out(src.sandbox, src.path, dst.path)
			}
			return c.in(src.path, dst.sandbox, dst.path)
		}),
	}
}

// cpArg is one side of cp: a sandbox path (sandbox set) or a host path.
type cpArg struct {
	sandbox string
	path    string
}

// parseCpArg reads NAME:/path as a sandbox path and anything else as a host
// path. A prefix before ':' counts as a sandbox name when it consists of
// name characters only; write ./a:b for a host file called a:b.
func parseCpArg(s string) (cpArg, error) {
	if s == "" {
		return cpArg{}, usagef("cp: empty path")
	}
	name, p, ok := strings.Cut(s, ":")
	if !ok || name == "" || strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0 {
		return cpArg{path: s}, nil
	}
	if err := sandbox.ValidateName(name); err != nil {
		return cpArg{}, err
	}
	if err := sandbox.ValidatePath(p); err != nil {
		return cpArg{}, err
	}
	return cpArg{sandbox: name, path: path.Clean(p)}, nil
}

// copier copies between the host and one sandbox.
type copier struct {
	ctx context.Context
	mgr *service.Manager
	app *app
}

// in copies the host path src to dst in the sandbox.
func (c *copier) in(src, name, dst string) error {
	if src == "-" {
		return c.mgr.WriteFile(c.ctx, name, dst, c.app.stdin, 0o644)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	target := dst
	if rfi, err := c.mgr.Stat(c.ctx, name, dst); err == nil && rfi.Type == agentv1.TypeDir {
		target = path.Join(dst, filepath.Base(filepath.Clean(src)))
	} else if err != nil && !isNotFound(err) {
		return err
	}
	if !fi.IsDir() {
		return c.fileIn(src, name, target, fi.Mode())
	}
	if src, err = filepath.EvalSymlinks(src); err != nil { // a link given by name is followed
		return fmt.Errorf("cp: %w", err)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("cp: %w", err)
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := path.Join(target, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			return c.mgr.Mkdir(c.ctx, name, to, true)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("cp: %w", err)
			}
			return c.fileIn(p, name, to, info.Mode())
		}
		c.app.warnf("cp: skipping %s: not a regular file or directory", p)
		return nil
	})
}

func (c *copier) fileIn(src, name, dst string, mode fs.FileMode) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	defer f.Close()
	if err := c.mgr.WriteFile(c.ctx, name, dst, f, uint32(mode.Perm())); err != nil {
		return fmt.Errorf("copying %s to %s:%s: %w", src, name, dst, err)
	}
	return nil
}

// out copies src in the sandbox to the host path dst.
func (c *copier) out(name, src, dst string) error {
	fi, err := c.mgr.Stat(c.ctx, name, src)
	if err != nil {
		return err
	}
	if dst == "-" {
		if fi.Type == agentv1.TypeDir {
			return usagef("cp: %s:%s is a directory; only a file can be copied to stdout", name, src)
		}
		return c.stream(name, src, c.app.stdout)
	}
	target := dst
	if hfi, err := os.Stat(dst); err == nil && hfi.IsDir() {
		target = filepath.Join(dst, path.Base(src))
	}
	if fi.Type == agentv1.TypeDir {
		return c.dirOut(name, src, target, fi.Mode)
	}
	// A symlink given by name is followed, as reading it does.
	return c.fileOut(name, src, target, fi.Mode)
}

func (c *copier) stream(name, src string, w io.Writer) error {
	rc, err := c.mgr.ReadFile(c.ctx, name, src)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// fileOut writes the sandbox file src to the host file dst: into a temporary
// file next to it, renamed over dst only when complete.
func (c *copier) fileOut(name, src, dst string, mode uint32) (err error) {
	if hfi, err := os.Lstat(dst); err == nil && hfi.IsDir() {
		return fmt.Errorf("cp: %s is a directory", dst)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".agentkernel-cp-*")
	if err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := c.stream(name, src, tmp); err != nil {
		return fmt.Errorf("copying %s:%s: %w", name, src, err)
	}
	perm := fs.FileMode(mode) & fs.ModePerm
	if perm == 0 {
		perm = 0o644
	}
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// dirOut copies the sandbox directory src to the host directory dst.
func (c *copier) dirOut(name, src, dst string, mode uint32) error {
	perm := fs.FileMode(mode)&fs.ModePerm | 0o700
	if err := os.Mkdir(dst, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cp: %w", err)
	}
	if hfi, err := os.Lstat(dst); err != nil || !hfi.IsDir() {
		return fmt.Errorf("cp: %s exists and is not a directory", dst)
	}
	entries, err := c.mgr.ListDir(c.ctx, name, src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		// Names come from the sandbox: never let one step out of dst.
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\x00") {
			return fmt.Errorf("cp: sandbox %s listed an invalid file name %q in %s", name, e.Name, src)
		}
		from, to := path.Join(src, e.Name), filepath.Join(dst, e.Name)
		if err := sandbox.ValidatePath(from); err != nil {
			c.app.warnf("cp: skipping %s: %v", from, err)
			continue
		}
		switch e.Type {
		case agentv1.TypeDir:
			err = c.dirOut(name, from, to, e.Mode)
		case agentv1.TypeFile:
			err = c.fileOut(name, from, to, e.Mode)
		default:
			c.app.warnf("cp: skipping %s:%s: not a regular file or directory", name, from)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
