package agent_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	v1 "github.com/agentkernel-go/agentkernel/api/agent/v1"
	"github.com/agentkernel-go/agentkernel/internal/agent"
	"github.com/agentkernel-go/agentkernel/internal/testutil"
)

// tarEntry is one archived file: its header and content.
type tarEntry struct {
	hdr  *tar.Header
	body string
}

// readArchive reads the whole archive of dir, in archive order, and
// returns what the agent reported skipped.
func readArchive(t *testing.T, c *v1.Client, dir string) ([]string, map[string]tarEntry, v1.ArchiveSkipped) {
	t.Helper()
	rc, err := c.Archive(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	entries := make(map[string]tarEntry)
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the archive: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s: %v", hdr.Name, err)
		}
		if _, dup := entries[hdr.Name]; dup {
			t.Errorf("%s archived twice", hdr.Name)
		}
		names = append(names, hdr.Name)
		entries[hdr.Name] = tarEntry{hdr, string(b)}
	}
	// The tar's end is the stream's end: the trailer is read there.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	return names, entries, rc.Skipped()
}

func TestArchiveTree(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	dir := t.TempDir()
	mtime := time.Date(2024, 2, 3, 4, 5, 6, 789012345, time.UTC)
	writeFile(t, filepath.Join(dir, "a.txt"), "hello", 0o640)
	os.Chtimes(filepath.Join(dir, "a.txt"), mtime, mtime)
	if err := os.Chown(filepath.Join(dir, "a.txt"), 1234, 5678); err != nil && os.Getuid() == 0 {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o750)
	os.Chmod(filepath.Join(dir, "sub"), 0o750)
	writeFile(t, filepath.Join(dir, "sub", "suid"), "#!/bin/sh\n", 0o755)
	must(t, unix.Chmod(filepath.Join(dir, "sub", "suid"), 0o4755))
	writeFile(t, filepath.Join(dir, "empty"), "", 0o600)
	must(t, os.Link(filepath.Join(dir, "a.txt"), filepath.Join(dir, "sub", "hard")))
	must(t, os.Symlink("/etc/shadow", filepath.Join(dir, "escape")))
	must(t, os.Symlink("sub", filepath.Join(dir, "dirlink")))
	must(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o620))
	must(t, unix.Chmod(filepath.Join(dir, "fifo"), 0o620))
	ln, err := net.Listen("unix", filepath.Join(dir, "sock"))
	must(t, err)
	defer ln.Close()
	// A stand-in for /proc: archived as an empty directory.
	os.MkdirAll(filepath.Join(dir, "proc", "1"), 0o555)
	writeFile(t, filepath.Join(dir, "proc", "1", "status"), "kernel", 0o444)
	agent.SetArchivePseudoDirs(t, []string{filepath.Join(dir, "proc")})
	xattrs := true
	if err := unix.Setxattr(filepath.Join(dir, "a.txt"), "user.test", []byte("v\x00al"), 0); err != nil {
		t.Logf("no user xattrs here (%v): not checking them", err)
		xattrs = false
	} else {
		must(t, unix.Setxattr(filepath.Join(dir, "sub"), "user.dir", []byte("d"), 0))
	}

	names, entries, skipped := readArchive(t, c, dir)
	want := []string{"./", "a.txt", "dirlink", "empty", "escape", "fifo", "proc/", "sub/", "sub/hard", "sub/suid"}
	if !slices.Equal(names, want) {
		t.Fatalf("archive holds\n %q\nwant\n %q", names, want)
	}
	if skipped.Count != 0 {
		t.Errorf("skipped %+v", skipped)
	}
	check := func(name string, typ byte, mode int64, link, body string) *tar.Header {
		t.Helper()
		e := entries[name]
		if e.hdr.Typeflag != typ || e.hdr.Linkname != link || e.body != body ||
			(typ != tar.TypeSymlink && typ != tar.TypeLink && e.hdr.Mode != mode) {
			t.Errorf("%s: type %c mode %o link %q body %q; want %c %o %q %q",
				name, e.hdr.Typeflag, e.hdr.Mode, e.hdr.Linkname, e.body, typ, mode, link, body)
		}
		return e.hdr
	}
	a := check("a.txt", tar.TypeReg, 0o640, "", "hello")
	if !a.ModTime.Equal(mtime) {
		t.Errorf("a.txt mtime %v, want %v", a.ModTime, mtime)
	}
	if os.Getuid() == 0 && (a.Uid != 1234 || a.Gid != 5678) {
		t.Errorf("a.txt owner %d:%d", a.Uid, a.Gid)
	}
	check("sub/", tar.TypeDir, 0o750, "", "")
	check("sub/suid", tar.TypeReg, 0o4755, "", "#!/bin/sh\n")
	check("sub/hard", tar.TypeLink, 0, "a.txt", "")
	check("empty", tar.TypeReg, 0o600, "", "")
	check("escape", tar.TypeSymlink, 0, "/etc/shadow", "")
	check("dirlink", tar.TypeSymlink, 0, "sub", "")
	check("fifo", tar.TypeFifo, 0o620, "", "")
	check("proc/", tar.TypeDir, 0o555, "", "")
	if xattrs {
		if v := a.PAXRecords["SCHILY.xattr.user.test"]; v != "v\x00al" {
			t.Errorf("a.txt xattr %q (records %v)", v, a.PAXRecords)
		}
		if v := entries["sub/"].hdr.PAXRecords["SCHILY.xattr.user.dir"]; v != "d" {
			t.Errorf("sub xattr %q", v)
		}
	}
}

func TestArchiveErrors(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	ctx := t.Context()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), "x", 0o644)
	for _, tc := range []struct{ path, code string }{
		{"relative", v1.CodeInvalidArgument},
		{dir + "/../x", v1.CodeInvalidArgument},
		{dir + "/missing", v1.CodeNotFound},
		{dir + "/f", v1.CodeInvalidArgument},
		{"/proc", v1.CodeInvalidArgument},
		{"/proc/self", v1.CodeInvalidArgument},
		{"/sys/kernel", v1.CodeInvalidArgument},
		{"/dev", v1.CodeInvalidArgument},
	} {
		_, err := c.Archive(ctx, tc.path)
		wantCode(t, err, tc.code)
	}
}

// TestArchiveCutOff: a failure after the first byte resets the stream, so
// the client sees an error, never a short archive that looks whole.
func TestArchiveCutOff(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	writeFile(t, big, strings.Repeat("0123456789abcdef", 1<<16), 0o644) // 1 MiB
	writeFile(t, filepath.Join(dir, "later"), "x", 0o644)
	agent.SetArchiveHook(t, func(p string) {
		if p == big {
			os.Truncate(big, 10)
		}
	})
	rc, err := c.Archive(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err == nil {
		t.Fatalf("read %d bytes and no error from an archive the agent could not finish", n)
	}
	var e *v1.Error
	if !errors.As(err, &e) || e.Code != v1.CodeInternal || !strings.Contains(err.Error(), "cut off") {
		t.Errorf("error %v, want an internal error saying the archive was cut off", err)
	}
	// The connection still serves.
	if _, err := c.Version(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestArchivePseudoMount: a kernel filesystem mounted inside the tree is
// archived as an empty directory.
func TestArchivePseudoMount(t *testing.T) {
	testutil.RequireRoot(t)
	c := startInProcess(t, agent.Options{})
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	writeFile(t, filepath.Join(dir, "z"), "data", 0o644)
	must(t, unix.Mount("proc", mnt, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""))
	t.Cleanup(func() { must(t, unix.Unmount(mnt, unix.MNT_DETACH)) })
	names, entries, _ := readArchive(t, c, dir)
	if want := []string{"./", "mnt/", "z"}; !slices.Equal(names, want) {
		t.Fatalf("archive holds %q, want %q", names, want)
	}
	if entries["z"].body != "data" {
		t.Errorf("z: %q", entries["z"].body)
	}
	_, err := c.Archive(t.Context(), mnt)
	wantCode(t, err, v1.CodeInvalidArgument)
}

// TestArchiveUnreadable: what the agent may not read is left out (a
// directory keeps its own entry), counted in the trailer, and the rest is
// archived.
func TestArchiveUnreadable(t *testing.T) {
	base, err := os.MkdirTemp("", "akarchive")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	must(t, os.Chmod(base, 0o755))
	tree := filepath.Join(base, "tree")
	os.Mkdir(tree, 0o755)
	writeFile(t, filepath.Join(tree, "public"), "ok", 0o644)
	writeFile(t, filepath.Join(tree, "secret"), "no", 0o000)
	os.Mkdir(filepath.Join(tree, "closed"), 0o755)
	writeFile(t, filepath.Join(tree, "closed", "inside"), "no", 0o644)
	must(t, os.Chmod(filepath.Join(tree, "closed"), 0o000))
	t.Cleanup(func() { os.Chmod(filepath.Join(tree, "closed"), 0o755) })

	var c *v1.Client
	if os.Getuid() == 0 {
		c = startAsNobody(t, base) // root reads everything
	} else {
		c = startInProcess(t, agent.Options{})
	}
	names, entries, skipped := readArchive(t, c, tree)
	if want := []string{"./", "closed/", "public"}; !slices.Equal(names, want) {
		t.Fatalf("archive holds %q, want %q", names, want)
	}
	if entries["public"].body != "ok" {
		t.Errorf("public: %q", entries["public"].body)
	}
	want := v1.ArchiveSkipped{Count: 2, Paths: []string{filepath.Join(tree, "closed"), filepath.Join(tree, "secret")}}
	if skipped.Count != want.Count || !slices.Equal(skipped.Paths, want.Paths) {
		t.Errorf("skipped %+v, want %+v", skipped, want)
	}
}

// startAsNobody runs the agent binary as uid/gid 65534, from a copy in
// base (which must be world-searchable), and returns a client for it.
func startAsNobody(t *testing.T, base string) *v1.Client {
	t.Helper()
	b, err := os.ReadFile(testutil.BuildBinary(t, "agentkernel-agent"))
	must(t, err)
	bin := filepath.Join(base, "agent")
	must(t, os.WriteFile(bin, b, 0o755))
	sockDir := filepath.Join(base, "s")
	must(t, os.Mkdir(sockDir, 0o777))
	must(t, os.Chmod(sockDir, 0o777))
	sock := filepath.Join(sockDir, "agent.sock")
	cmd := exec.Command(bin, "-log-level", "debug", "-listen", sock)
	cmd.Stderr = testWriter{t}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	must(t, cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	c := v1.NewClient(unixDialer(sock))
	t.Cleanup(func() {
		c.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Error("agent did not exit on SIGTERM")
		}
	})
	waitVersion(t, c)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestArchiveLarge: a tree bigger than every buffer and flow-control
// window on the way arrives whole.
func TestArchiveLarge(t *testing.T) {
	c := startInProcess(t, agent.Options{})
	dir := t.TempDir()
	data := bytes.Repeat([]byte("agentkernel\x00"), 1<<20) // 12 MiB
	must(t, os.WriteFile(filepath.Join(dir, "big"), data, 0o644))
	for i := range 300 {
		writeFile(t, filepath.Join(dir, "f"+strings.Repeat("x", i%50)+string(rune('a'+i%26))+string(rune('a'+i/26))), "small", 0o644)
	}
	names, entries, _ := readArchive(t, c, dir)
	if len(names) != 302 || entries["big"].body != string(data) {
		t.Fatalf("%d entries, big %d bytes", len(names), len(entries["big"].body))
	}
}
