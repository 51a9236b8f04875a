//go:build linux

package microvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/flock"
)

// Guest disks are ext4 filesystems in sparse files, made by e2fsprogs.
//
// Every image layer becomes one read-only disk, built once from the layer's
// overlayfs lower directory and cached under its chain ID, so every VM of
// every image that has the layer attaches the same file and the host page
// cache holds its blocks once. Each sandbox adds a writable upper disk for
// overlayfs's upper/ and work/.
//
// Neither has a journal: layer disks are never written, and an upper disk
// dies with its sandbox, so a crash loses nothing a journal would have
// saved. Both are sparse, so a generous size costs nothing on the host:
// sizes are estimated high rather than exactly.

const (
	diskBlockSize = 4096
	diskInodeSize = 256 // room for in-inode xattrs and nanosecond, post-2038 times

	// layerTmpPrefix starts the names of layer disks being built in the cache.
	layerTmpPrefix = ".tmp-"
	// layerTmpMaxAge is how old a temp file must be before pruneLayerDisks
	// takes it for the leftover of a crashed build; no build takes this long.
	layerTmpMaxAge = time.Hour

	minUpperMiB = 64
	maxUpperMiB = 1 << 20
)

// layerDisk returns the path of the cached ext4 image of lowerDir, a
// layer's <chainID>/fs directory, building it first if it is not there.
// Concurrent callers, in this process or others, wait for one build under
// an exclusive flock on <cacheDir>/<chainID>.lock; a disk is renamed into
// place only once complete and synced, so an existing one is always whole.
func layerDisk(ctx context.Context, cacheDir, lowerDir string) (string, error) {
	lowerDir = filepath.Clean(lowerDir)
	key := filepath.Base(filepath.Dir(lowerDir))
	if filepath.Base(lowerDir) != "fs" || !safeKey(key) {
		return "", fmt.Errorf("layer directory %q is not <chain ID>/fs: %w", lowerDir, errdefs.ErrInvalidArgument)
	}
	mkfs, err := e2fsprog("mkfs.ext4")
	if err != nil {
		return "", err
	}
	debugfs, err := e2fsprog("debugfs")
	if err != nil {
		return "", err
	}
	var root unix.Stat_t
	if err := unix.Stat(lowerDir, &root); err != nil {
		return "", fmt.Errorf("layer disk %s: %w", key, &fs.PathError{Op: "stat", Path: lowerDir, Err: err})
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return "", fmt.Errorf("layer disk cache: %w", err)
	}
	lock, err := lockKey(ctx, cacheDir, key)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("waiting for layer disk lock %s: %w: %w", key, errdefs.ErrDeadlineExceeded, err)
		}
		return "", fmt.Errorf("layer disk lock %s: %w", key, err)
	}
	defer lock.Close()

	disk := filepath.Join(cacheDir, key+".ext4")
	if _, err := os.Stat(disk); err == nil {
		return disk, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("layer disk %s: %w", key, err)
	}
	if err := buildLayerDisk(ctx, mkfs, debugfs, disk, lowerDir, &root); err != nil {
		return "", fmt.Errorf("building layer disk %s: %w", key, err)
	}
	return disk, nil
}

// buildLayerDisk writes the image of lowerDir, whose stat is root, to a
// temp file next to disk and renames it into place; on error nothing is
// left behind.
func buildLayerDisk(ctx context.Context, mkfs, debugfs, disk, lowerDir string, root *unix.Stat_t) (err error) {
	mib, inodes, err := estimateLayerDisk(ctx, lowerDir)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(disk), layerTmpPrefix+filepath.Base(disk)+"-")
	if err != nil {
		return err
	}
	defer func() {
		f.Close()
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	// -d copies lowerDir's tree with owners, modes, times (whole seconds),
	// xattrs of every namespace (so user.overlay.* too), hardlinks, device
	// nodes and holes. -N fixes the inode count, since the usage types of
	// mke2fs.conf would otherwise guess it from the size; -b and -I stop a
	// small disk from getting 1 KiB blocks or 128-byte inodes; -m 0 keeps
	// no blocks back for a root that never writes here.
	if err := runE2fs(ctx, "", mkfs, "-q", "-F", "-d", lowerDir, "-L", "ak-layer",
		"-b", fmt.Sprint(diskBlockSize), "-I", fmt.Sprint(diskInodeSize), "-m", "0",
		"-N", fmt.Sprint(inodes), "-O", "^has_journal",
		"-E", fmt.Sprintf("root_owner=%d:%d", root.Uid, root.Gid),
		f.Name(), fmt.Sprintf("%dM", mib)); err != nil {
		return err
	}
	// mke2fs 1.47.0 gives the root directory mode 0755 whatever lowerDir's
	// is, and always makes a /lost+found, which overlayfs would show in
	// the sandbox's root. Neither can be asked of mke2fs, so debugfs fixes
	// both, keeping a lost+found the layer itself has.
	script := fmt.Sprintf("sif / mode 0%o\n", unix.S_IFDIR|root.Mode&0o7777)
	if _, err := os.Lstat(filepath.Join(lowerDir, "lost+found")); errors.Is(err, fs.ErrNotExist) {
		script += "rmdir /lost+found\n"
	} else if err != nil {
		return err
	}
	if err := runE2fs(ctx, script, debugfs, "-w", "-f", "-", f.Name()); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), disk); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(disk))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// estimateLayerDisk returns a size in MiB and an inode count for an ext4
// copy of dir: the data of each regular file (hardlinked ones once), a
// block per directory and symlink, the directory entries and the inode
// table, plus 15% and 16 MiB for ext4's own metadata. A file's apparent
// size counts when it exceeds its allocation (compressed or inline data on
// the host), overestimating only sparse files, which is free.
func estimateLayerDisk(ctx context.Context, dir string) (mib, inodes int64, err error) {
	type fileID struct{ dev, ino uint64 }
	seen := map[fileID]bool{}
	var size int64
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		size += roundUp(int64(8+len(d.Name())), 4) // the directory entry
		if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 {
			id := fileID{uint64(st.Dev), uint64(st.Ino)}
			if seen[id] {
				return nil
			}
			seen[id] = true
		}
		inodes++
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			size += roundUp(max(st.Blocks*512, st.Size), diskBlockSize)
		case unix.S_IFDIR, unix.S_IFLNK:
			size += diskBlockSize
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	inodes += 64 // the reserved ones and lost+found
	size += inodes * diskInodeSize
	size = size*115/100 + 16<<20
	return roundUp(size, 1<<20) >> 20, inodes, nil
}

// upperDisk creates a sparse, empty ext4 filesystem of sizeMiB at path,
// which must not exist, for a sandbox's overlayfs upper and work dirs.
func upperDisk(ctx context.Context, path string, sizeMiB int) (err error) {
	if sizeMiB < minUpperMiB || sizeMiB > maxUpperMiB {
		return fmt.Errorf("upper disk size %d MiB not in [%d, %d]: %w", sizeMiB, minUpperMiB, maxUpperMiB, errdefs.ErrInvalidArgument)
	}
	mkfs, err := e2fsprog("mkfs.ext4")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("upper disk %s: %w", path, errdefs.ErrAlreadyExists)
	} else if err != nil {
		return fmt.Errorf("upper disk: %w", err)
	}
	defer func() {
		f.Close()
		if err != nil {
			os.Remove(path)
		}
	}()
	// assume_storage_prezeroed is true of a new sparse file. Without it
	// mke2fs leaves the inode tables for the guest kernel to zero in the
	// background, writing (and allocating on the host) every block of them;
	// with it they are only marked zeroed, and mke2fs writes a few MiB.
	if err := runE2fs(ctx, "", mkfs, "-q", "-F", "-L", "ak-upper",
		"-b", fmt.Sprint(diskBlockSize), "-I", fmt.Sprint(diskInodeSize), "-m", "0",
		"-O", "^has_journal", "-E", "assume_storage_prezeroed=1",
		path, fmt.Sprintf("%dM", sizeMiB)); err != nil {
		return fmt.Errorf("making upper disk %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("upper disk %s: %w", path, err)
	}
	return nil
}

// pruneLayerDisks removes the cached disks, and their lock files, of the
// chain IDs keep rejects, and temp files of builds that crashed. A disk
// being built is skipped. keep must accept every key a sandbox of the data
// root uses: a running VM keeps its open disk after the unlink, but one
// about to start would find it gone.
func pruneLayerDisks(cacheDir string, keep func(key string) bool) error {
	ents, err := os.ReadDir(cacheDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("pruning layer disks: %w", err)
	}
	var errs []error
	keys := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, layerTmpPrefix) {
			info, err := e.Info()
			if err == nil && time.Since(info.ModTime()) > layerTmpMaxAge {
				err = os.Remove(filepath.Join(cacheDir, name))
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		key, ok := strings.CutSuffix(name, ".ext4")
		if !ok {
			key, ok = strings.CutSuffix(name, ".lock")
		}
		if ok && safeKey(key) {
			keys[key] = true
		}
	}
	for key := range keys {
		if !keep(key) {
			errs = append(errs, pruneKey(cacheDir, key))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pruning layer disks: %w", err)
	}
	return nil
}

// pruneKey removes key's disk and lock file unless a build holds the lock.
func pruneKey(cacheDir, key string) error {
	done, cancel := context.WithCancel(context.Background())
	cancel() // flock.Wait with a done ctx tries once
	lock, err := lockKey(done, cacheDir, key)
	if errors.Is(err, context.Canceled) {
		return nil // being built right now
	} else if err != nil {
		return err
	}
	defer lock.Close()
	if err := os.Remove(filepath.Join(cacheDir, key+".ext4")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Unlinked while held: lockKey's waiters notice and lock the new file.
	return os.Remove(filepath.Join(cacheDir, key+".lock"))
}

// lockKey takes an exclusive flock on <cacheDir>/<key>.lock, waiting until
// ctx ends. pruneKey unlinks lock files it holds, and a lock on an unlinked
// file excludes nobody, so the lock is taken again until the locked file is
// the one at the path.
func lockKey(ctx context.Context, cacheDir, key string) (*os.File, error) {
	path := filepath.Join(cacheDir, key+".lock")
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if err := flock.Wait(ctx, int(f.Fd()), unix.LOCK_EX); err != nil {
			f.Close()
			return nil, err
		}
		held, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		now, err := os.Stat(path)
		if err == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
}

// safeKey reports whether key can name files in the cache: a chain ID is
// hex, and a leading dot is kept for temp files.
func safeKey(key string) bool {
	if key == "" || len(key) > 200 || key[0] == '.' || key[0] == '-' {
		return false
	}
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// e2fsprog finds an e2fsprogs binary, also in the sbin directories a
// non-login root shell's PATH may lack.
func e2fsprog(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (install e2fsprogs): %w", name, errdefs.ErrUnavailable)
}

// runE2fs runs an e2fsprogs command, making its failure an error that ends
// with the last line of its stderr. debugfs exits 0 even when a command
// fails, so for it any stderr line but its version banner is a failure.
func runE2fs(ctx context.Context, stdin, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	var msg string
	for line := range strings.Lines(stderr.String()) {
		line = strings.TrimSpace(line)
		banner := strings.HasPrefix(line, filepath.Base(name)+" ") && !strings.Contains(line, ":")
		if line != "" && !banner {
			msg = line
		}
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", filepath.Base(name), ctx.Err())
	case err != nil && msg != "":
		return fmt.Errorf("%s: %w: %s", filepath.Base(name), err, msg)
	case err != nil:
		return fmt.Errorf("%s: %w", filepath.Base(name), err)
	case msg != "" && filepath.Base(name) == "debugfs":
		return fmt.Errorf("debugfs: %s", msg)
	}
	return nil
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }
