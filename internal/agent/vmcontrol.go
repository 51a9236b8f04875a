package agent

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
)

// serveControl serves the control port on dev: the host gives a VM just
// restored from a saved state its own identity (v1.Identity). It is the
// guest's init that serves it, since the sandbox's agent may neither
// reseed the kernel's RNG nor set the clock.
func serveControl(log *slog.Logger, dev string) {
	l := newPortListener(dev)
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		if err := handleControl(c); err != nil {
			log.Warn("control port", "err", err)
		}
		c.Close()
	}
}

func handleControl(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	reply := "ok\n"
	id, err := v1.ParseIdentity(line)
	if err == nil {
		err = applyIdentity(id)
	}
	if err != nil {
		reply = "error " + err.Error() + "\n"
	}
	_, werr := c.Write([]byte(reply))
	if err != nil {
		return err
	}
	return werr
}

// applyIdentity mixes the seed into the kernel's RNG (credited, so the
// RNG counts it as entropy) and reseeds it at once, so that two VMs
// restored from one state never draw the same numbers; then it sets the
// clock and the host name.
func applyIdentity(id v1.Identity) error {
	rnd, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer rnd.Close()
	// struct rand_pool_info: entropy_count (bits), buf_size, buf.
	info := make([]byte, 8+len(id.Seed))
	binary.NativeEndian.PutUint32(info, uint32(8*len(id.Seed)))
	binary.NativeEndian.PutUint32(info[4:], uint32(len(id.Seed)))
	copy(info[8:], id.Seed)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, rnd.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&info[0]))); e != 0 {
		return fmt.Errorf("adding entropy: %w", e)
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, rnd.Fd(), unix.RNDRESEEDCRNG, 0); e != 0 {
		return fmt.Errorf("reseeding: %w", e)
	}
	ts := unix.NsecToTimespec(id.Time.UnixNano())
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("setting the clock: %w", err)
	}
	if err := unix.Sethostname([]byte(id.Hostname)); err != nil {
		return fmt.Errorf("setting the host name: %w", err)
	}
	return nil
}
