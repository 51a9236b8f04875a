package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

func (a *app) newExportCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [flags] NAME",
		Short: "Write a running sandbox's filesystem as a tar archive",
		Long: `Export writes the whole root filesystem of the running sandbox NAME, as the
sandbox sees it (mounted directories included), as an uncompressed tar: to
FILE with -o, else to stdout (never to a terminal). Like docker export, it is
a plain filesystem archive, not an image. /proc, /sys and /dev are empty
directories in it; sockets are left out. A file written with -o appears only
once the archive is complete.`,
		Example: `  agentkernel export dev -o dev.tar
  agentkernel export dev | tar -tvf - | less`,
		Args:              exactArgs(1, "NAME"),
		ValidArgsFunction: a.completeNames(1),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := sandbox.ValidateName(name); err != nil {
				return err
			}
			toStdout := output == "" || output == "-"
			if toStdout && isTerminal(a.stdout) {
				return usagef("export: refusing to write a tar archive to a terminal; use -o FILE or redirect stdout")
			}
			ctx := cmd.Context()
			mgr, err := a.manager(ctx)
			if err != nil {
				return err
			}
			export := func(w io.Writer) error {
				res, err := mgr.Export(ctx, name, w)
				if err != nil {
					return err
				}
				if res.Skipped > 0 {
					list := strings.Join(res.SkippedPaths, ", ")
					if res.Skipped > len(res.SkippedPaths) {
						list += ", ..."
					}
					a.warnf("export: left out %d file(s) the sandbox may not read: %s", res.Skipped, list)
				}
				return nil
			}
			if toStdout {
				return export(a.stdout)
			}
			return writeAtomically(output, export)
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", `write to FILE ("-": stdout)`)
	return cmd
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// writeAtomically has fill write a new file at dst: into a temporary file
// in the same directory, renamed over dst only when fill succeeded, so dst
// is whole or untouched. An existing dst keeps its permissions.
func writeAtomically(dst string, fill func(io.Writer) error) error {
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		return usagef("%s is a directory", dst)
	}
	tmp, err := renameio.NewPendingFile(dst, renameio.WithPermissions(0o644), renameio.WithExistingPermissions())
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("creating %s: %w", dst, err)
	}
	defer tmp.Cleanup() // a no-op once replaced
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}
