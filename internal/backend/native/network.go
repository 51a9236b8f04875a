//go:build linux

package native

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/nettap"
)

// resolvConfName is the sandbox's resolv.conf in its state directory,
// bound read-only over /etc/resolv.conf when the network is on.
const resolvConfName = "resolv.conf"

// tapTimeout bounds the wait for init's TAP device.
const tapTimeout = 10 * time.Second

// sendTAP makes the sandbox's interface from inside (unprivileged: the
// host cannot enter the sandbox's namespaces) and sends the TAP device to
// the host on sock, which it then closes.
func sendTAP(sock int) error {
	defer unix.Close(sock)
	tap, err := nettap.Create()
	if err != nil {
		return err
	}
	defer tap.Close()
	return unix.Sendmsg(sock, []byte{1}, unix.UnixRights(int(tap.Fd())), nil, 0)
}

// receiveTAP receives the TAP device init sends on sock. If init exits
// first, its end closes and the receive fails.
func receiveTAP(ctx context.Context, sock *os.File) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	rc := make(chan result, 1)
	go func() {
		buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			rc <- result{err: err}
			return
		}
		var fds []int
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
			fds, _ = unix.ParseUnixRights(&msgs[0])
		}
		if len(fds) != 1 {
			for _, fd := range fds {
				unix.Close(fd)
			}
			rc <- result{err: fmt.Errorf("sandbox init sent no network interface")}
			return
		}
		rc <- result{f: os.NewFile(uintptr(fds[0]), "tap")}
	}()
	ctx, cancel := context.WithTimeout(ctx, tapTimeout)
	defer cancel()
	select {
	case r := <-rc:
		return r.f, r.err
	case <-ctx.Done():
		unix.Shutdown(int(sock.Fd()), unix.SHUT_RDWR) // ends the receive
		if r := <-rc; r.f != nil {
			r.f.Close()
		}
		return nil, fmt.Errorf("waiting for the sandbox's network interface: %w", ctx.Err())
	}
}
