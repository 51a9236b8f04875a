// Command prober tries one thing a sandboxed process must not be able to do
// (or, as a control, one it must) and reports the outcome. The conformance
// suite copies it into a sandbox, so the escape attempts do not depend on
// which tools an image happens to ship.
//
// Usage: prober CHECK [ARG]. It prints "ok" and exits 0 when the operation
// succeeded, prints "denied: <errno>" and exits 1 when it failed, and exits
// 2 on bad usage.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: prober CHECK [ARG]")
		os.Exit(2)
	}
	arg := ""
	if len(os.Args) > 2 {
		arg = os.Args[2]
	}
	out, err := run(os.Args[1], arg)
	if err != nil {
		var errno unix.Errno
		if errors.As(err, &errno) {
			fmt.Printf("denied: %s (%d)\n", unix.ErrnoName(errno), int(errno))
		} else {
			fmt.Printf("denied: %v\n", err)
		}
		os.Exit(1)
	}
	fmt.Println(strings.TrimSpace("ok " + out))
}

func run(check, arg string) (string, error) {
	runtime.LockOSThread()
	switch check {
	case "read":
		b, err := os.ReadFile(arg)
		return string(b), err
	case "write":
		return "", os.WriteFile(arg, []byte("escaped\n"), 0o644)
	case "connect":
		c, err := net.DialTimeout("tcp", arg, 2*time.Second)
		if err == nil {
			c.Close()
		}
		return "", err
	case "mount":
		return "", unix.Mount("none", arg, "tmpfs", 0, "")
	case "unshare-user":
		return "", unix.Unshare(unix.CLONE_NEWUSER)
	case "unshare-mount":
		return "", unix.Unshare(unix.CLONE_NEWNS)
	case "ptrace":
		pid, err := strconv.Atoi(arg)
		if err != nil {
			return "", err
		}
		if err := unix.PtraceAttach(pid); err != nil {
			return "", err
		}
		unix.PtraceDetach(pid)
		return "", nil
	case "reboot":
		return "", unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	case "finit_module":
		f, err := os.Open("/dev/null")
		if err != nil {
			return "", err
		}
		defer f.Close()
		return "", unix.FinitModule(int(f.Fd()), "", 0)
	case "mknod":
		return "", unix.Mknod(arg, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
	case "chroot":
		return "", unix.Chroot(arg)
	case "bpf":
		// BPF_MAP_CREATE with an empty attr: EPERM when denied, EINVAL when allowed.
		var attr [64]byte
		_, _, e := unix.Syscall(unix.SYS_BPF, 0, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
		if e == unix.EINVAL {
			return "reachable", nil
		}
		return "", e
	case "sethostname":
		return "", unix.Sethostname([]byte("escaped"))
	case "hostname":
		h, err := os.Hostname()
		return h, err
	case "ifaces":
		ifs, err := net.Interfaces()
		var names []string
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return strings.Join(names, ","), err
	case "pids":
		ents, err := os.ReadDir("/proc")
		var pids []string
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err == nil {
				pids = append(pids, e.Name())
			}
		}
		return strings.Join(pids, ","), err
	case "spawn":
		// Start up to N sleeping children; report how many the kernel allowed.
		n, err := strconv.Atoi(arg)
		if err != nil {
			return "", err
		}
		var procs []*os.Process
		defer func() {
			for _, p := range procs {
				p.Kill()
				p.Wait()
			}
		}()
		sleep, err := exec.LookPath("sleep")
		if err != nil {
			return "", err
		}
		for len(procs) < n {
			p, err := os.StartProcess(sleep, []string{"sleep", "60"}, &os.ProcAttr{})
			if err != nil {
				fmt.Printf("started %d\n", len(procs))
				return "", err
			}
			procs = append(procs, p)
		}
		return "started " + strconv.Itoa(len(procs)), nil
	case "alloc":
		mb, err := strconv.Atoi(arg)
		if err != nil {
			return "", err
		}
		var chunks [][]byte
		for i := 0; i < mb; i++ {
			c := make([]byte, 1<<20)
			for j := 0; j < len(c); j += 4096 {
				c[j] = 1
			}
			chunks = append(chunks, c)
		}
		return strconv.Itoa(len(chunks)), nil
	}
	fmt.Fprintf(os.Stderr, "unknown check %q\n", check)
	os.Exit(2)
	return "", nil
}
