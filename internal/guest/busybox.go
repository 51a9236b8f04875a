package guest

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// BusyboxPackage is the Debian package FetchBusybox downloads: the static
// build, since the guest has no C library for a dynamic one to load.
const BusyboxPackage = "busybox-static"

// FetchBusybox downloads and unpacks BusyboxPackage into a new temporary
// directory under dir and returns the path of its static busybox binary
// (ROOT/bin/busybox). The caller owns that directory (the binary's third
// ancestor) and may remove it, or dir. On error nothing is left in dir.
func FetchBusybox(ctx context.Context, dir string) (bin string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("fetch busybox: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "busybox-")
	if err != nil {
		return "", fmt.Errorf("fetch busybox: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	root, _, err := fetchDeb(ctx, tmp, BusyboxPackage)
	if err != nil {
		return "", fmt.Errorf("fetch busybox: %w", err)
	}
	bin = filepath.Join(root, "bin", "busybox")
	if err := checkStaticAMD64(bin); err != nil {
		return "", fmt.Errorf("fetch busybox: %w", err)
	}
	return bin, nil
}

// checkStaticAMD64 fails unless path is an x86-64 ELF executable without
// a program interpreter: the guest's root has no dynamic loader or libc.
func checkStaticAMD64(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || (f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN) {
		return fmt.Errorf("%s: not an x86-64 executable (%v %v %v)", path, f.Class, f.Machine, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: dynamically linked, need a static build", path)
		}
	}
	return nil
}

// Userland returns the initramfs entries of a minimal root filesystem run
// by busybox (a static x86-64 build): the binary as /bin/busybox, a link
// to it for every applet it was built with, the few files in /etc that
// programs expect, and the usual empty directories. The guest uses it as
// the sandbox's root when there is no image to boot into, since a microVM
// cannot share the host's userland. It has no /init: that is the agent,
// appended at each start.
//
// busybox is run on the host to list its applets and read its version.
func Userland(busybox string) ([]File, error) {
	if err := checkStaticAMD64(busybox); err != nil {
		return nil, fmt.Errorf("userland: %w", err)
	}
	ctx := context.Background()
	version, err := busyboxVersion(ctx, busybox)
	if err != nil {
		return nil, fmt.Errorf("userland: %w", err)
	}
	out, err := run(ctx, "", busybox, "--list-full")
	if err != nil {
		return nil, fmt.Errorf("userland: listing applets: %w", err)
	}
	dir := func(p string, perm fs.FileMode) File { return File{Path: p, Mode: fs.ModeDir | perm} }
	text := func(p, s string) File { return File{Path: p, Mode: 0o644, Data: []byte(s)} }
	files := []File{
		{Path: "/bin/busybox", Mode: 0o755, Source: busybox},
		dir("/root", 0o700),
		dir("/tmp", fs.ModeSticky|0o777),
		dir("/var/tmp", fs.ModeSticky|0o777),
		dir("/proc", 0o755),
		dir("/sys", 0o755),
		dir("/dev", 0o755),
		dir("/run", 0o755),
		dir("/home", 0o755),
		dir("/mnt", 0o755),
		text("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
		text("/etc/group", "root:x:0:\nnogroup:x:65534:\n"),
		text("/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
		text("/etc/os-release", fmt.Sprintf("ID=agentkernel\nNAME=\"agentkernel guest\"\nPRETTY_NAME=\"agentkernel guest (BusyBox %s)\"\n",
			strings.Fields(version)[0])),
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// The binary lists itself; and /init, were a build to name an
		// applet so, is the agent's.
		applet := path.Clean("/" + strings.TrimSpace(sc.Text()))
		if applet == "/" || applet == "/bin/busybox" || applet == "/init" {
			continue
		}
		// Absolute, so a link works wherever it sits in the tree.
		files = append(files, File{Path: applet, Link: "/bin/busybox"})
	}
	return files, nil
}

// busyboxVersion returns what follows "BusyBox " in the binary's banner,
// e.g. "v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1)".
func busyboxVersion(ctx context.Context, busybox string) (string, error) {
	out, err := run(ctx, "", busybox, "--help")
	if err != nil {
		return "", fmt.Errorf("busybox version: %w", err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	v, ok := strings.CutPrefix(first, "BusyBox ")
	v, _, _ = strings.Cut(v, " multi-call binary")
	if !ok || strings.TrimSpace(v) == "" {
		return "", errors.New("busybox version: no BusyBox banner in --help")
	}
	return strings.TrimSpace(v), nil
}
