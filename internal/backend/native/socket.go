//go:build linux

package native

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxSunPath is the longest path a unix socket address holds (108 with the
// terminating NUL).
const maxSunPath = 107

// shortPath runs fn with a path to p that fits a socket address: p itself
// when short enough, otherwise /proc/self/fd/N/<base> through an O_PATH
// descriptor of p's directory, so deep data roots work.
func shortPath(p string, fn func(string) error) error {
	if len(p) <= maxSunPath {
		return fn(p)
	}
	dfd, err := unix.Open(filepath.Dir(p), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	short := "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + filepath.Base(p)
	if len(short) > maxSunPath {
		return fmt.Errorf("socket name %q too long", filepath.Base(p))
	}
	return fn(short)
}

// listenUnix creates a listening unix socket at path (replacing a stale
// one), mode 0600, and returns it as a file to hand to the sandbox. The
// caller's copy is the only one on the host; nothing unlinks the path on
// close.
func listenUnix(path string) (*os.File, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	err = shortPath(path, func(p string) error {
		return unix.Bind(fd, &unix.SockaddrUnix{Name: p})
	})
	if err == nil {
		err = os.Chmod(path, 0o600)
	}
	if err == nil {
		err = unix.Listen(fd, 128)
	}
	if err != nil {
		unix.Close(fd)
		os.Remove(path)
		return nil, fmt.Errorf("agent socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// dialUnix connects to the unix socket at path, however long the path.
func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	var c net.Conn
	err := shortPath(path, func(p string) error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "unix", p)
		return err
	})
	return c, err
}
