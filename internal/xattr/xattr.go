// Package xattr reads extended attributes whose size is not known in
// advance: ask for the size, read, and try again if the value grew in
// between. It wraps whichever x/sys call the caller has (by descriptor,
// by path without following a final symlink). Both sides use it — the
// agent and the host's layer applier — so it imports only x/sys.
package xattr

import (
	"errors"
	"strings"

	"golang.org/x/sys/unix"
)

// Call is one (f|l)getxattr or (f|l)listxattr call: with a nil buffer it
// returns the size needed.
type Call func(buf []byte) (int, error)

// Get reads a value.
func Get(call Call) ([]byte, error) {
	for {
		n, err := call(nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = call(buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew in between
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// List reads a list of names; a filesystem without extended attributes
// has none.
func List(call Call) ([]string, error) {
	buf, err := Get(call)
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range strings.Split(string(buf), "\x00") {
		if s != "" {
			names = append(names, s)
		}
	}
	return names, nil
}
