//go:build linux

package seccomp

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// TestInstall loads the default filter on a throw-away thread and checks
// that it denies what it should and still allows ordinary work.
func TestInstall(t *testing.T) {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread exits with the goroutine, taking its
		// filter with it.
		runtime.LockOSThread()
		errc <- func() error {
			if err := Install(Options{Profile: sandbox.SeccompDefault}); err != nil {
				return err
			}
			if err := unix.Unshare(unix.CLONE_NEWUSER); !errors.Is(err, unix.EPERM) {
				return errors.New("unshare(CLONE_NEWUSER) not denied: " + errString(err))
			}
			if err := unix.Mount("none", "/", "tmpfs", 0, ""); !errors.Is(err, unix.EPERM) {
				return errors.New("mount not denied: " + errString(err))
			}
			if _, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0); !errors.Is(err, unix.EPERM) {
				return errors.New("vsock socket not denied: " + errString(err))
			}
			if _, err := os.ReadFile("/proc/self/status"); err != nil {
				return err
			}
			return nil
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := Install(Options{Profile: sandbox.SeccompUnconfined}); err != nil {
		t.Fatalf("unconfined: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return "succeeded"
	}
	return err.Error()
}
