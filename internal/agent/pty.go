package agent

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openPTY allocates a pseudo-terminal pair of rows x cols (24x80 if zero).
// The master is non-blocking so reads use the runtime poller and honour
// deadlines (the output drain rule needs them); the slave stays blocking,
// as the child expects of its terminal.
func openPTY(rows, cols uint16) (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	master = os.NewFile(uintptr(mfd), "/dev/ptmx")
	fail := func(err error) (*os.File, *os.File, error) {
		master.Close()
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return fail(fmt.Errorf("unlocking pty: %w", err))
	}
	n, err := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
	if err != nil {
		return fail(fmt.Errorf("getting pty number: %w", err))
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	sfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("opening %s: %w", name, err))
	}
	slave = os.NewFile(uintptr(sfd), name)
	if rows == 0 || cols == 0 {
		rows, cols = 24, 80
	}
	if err := setWinsize(master, rows, cols); err != nil {
		slave.Close()
		return fail(err)
	}
	return master, slave, nil
}

// setWinsize sets the terminal size; the kernel sends SIGWINCH to the
// terminal's foreground process group. It goes through SyscallConn because
// File.Fd would switch the master back to blocking mode.
func setWinsize(master *os.File, rows, cols uint16) error {
	rc, err := master.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	})
	if err != nil {
		return err
	}
	if ioErr != nil {
		return fmt.Errorf("setting window size: %w", ioErr)
	}
	return nil
}
