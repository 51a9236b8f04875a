package image

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// fakeHost builds a small host filesystem with the traps a real one has.
func fakeHost(t *testing.T) string {
	t.Helper()
	h := t.TempDir()
	mk := func(p string, mode os.FileMode, content string) {
		p = filepath.Join(h, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	link := func(target, p string) {
		if err := os.Symlink(target, filepath.Join(h, p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"usr/bin", "usr/lib", "lib64", "root", "home/alice", "var/lib", "opt", "etc/sudoers.d"} {
		os.MkdirAll(filepath.Join(h, d), 0o755)
	}
	link("usr/bin", "bin")
	link("/usr/sbin", "sbin")
	link("usr/lib", "lib")
	link("/opt/lib32", "lib32") // not into /usr: left out
	mk("root/secret", 0o600, "root secret")
	mk("home/alice/.ssh/id_rsa", 0o600, "alice key")
	mk("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/bash\n")
	mk("etc/group", 0o644, "root:x:0:\n")
	mk("etc/shadow", 0o640, "root:$6$hash:1::::::\n")
	mk("etc/gshadow", 0o640, "root:*::\n")
	mk("etc/shadow-", 0o640, "old\n")
	mk("etc/sudoers", 0o440, "root ALL=(ALL) ALL\n")
	mk("etc/sudoers.d/ci", 0o440, "ci ALL=NOPASSWD: ALL\n")
	mk("etc/ssh/ssh_host_ed25519_key", 0o600, "host key")
	mk("etc/ssh/sshd_config", 0o644, "PermitRootLogin no\n")
	mk("etc/ssl/certs/ca-certificates.crt", 0o644, "-----BEGIN CERTIFICATE-----\n")
	link("/usr/share/ca-certificates/mozilla/x.crt", "etc/ssl/certs/x.pem")
	mk("etc/ssl/private/ssl-cert-snakeoil.key", 0o640, "private key")
	mk("etc/ssl/openssl.cnf", 0o644, "[openssl]\n")
	os.MkdirAll(filepath.Join(h, "etc/alternatives"), 0o755)
	link("/usr/bin/vim.basic", "etc/alternatives/editor")
	link("/usr/bin/python3", "etc/alternatives/python")
	link("../usr/lib/os-release", "etc/os-release")
	mk("etc/machine-id", 0o444, "0123456789abcdef0123456789abcdef\n")
	mk("etc/gitconfig", 0o644, "[http]\nextraheader = AUTHORIZATION: token\n")
	mk("etc/environment", 0o644, "OPENAI_API_KEY=sk-xyz\n")
	mk("etc/hosts", 0o644, "127.0.0.1 localhost\n10.0.0.5 build-secret-db.internal\n")
	mk("etc/profile.d/ok.sh", 0o644, "export A=1\n")
	mk("etc/profile.d/private.sh", 0o600, "export TOKEN=secret\n")
	mk("etc/python3.11/sitecustomize.py", 0o644, "")
	mk("etc/ld.so.preload", 0o644, "/lib/evil.so\n")
	mk("etc/ld.so.cache", 0o644, "cache")
	return h
}

func newTestStore(t *testing.T, host string) *Store {
	s := NewStore(t.TempDir(), Options{})
	s.hostRoot = host
	return s
}

func TestHostSkeleton(t *testing.T) {
	host := fakeHost(t)
	s := newTestStore(t, host)
	fs, err := s.Resolve(t.Context(), sandbox.DefaultImage)
	if err != nil {
		t.Fatal(err)
	}
	if fs.Image != "host" || len(fs.Lowers) != 1 {
		t.Fatalf("rootfs %+v", fs)
	}
	sk, err := filepath.EvalSymlinks(fs.Lowers[0])
	if err != nil {
		t.Fatal(err)
	}
	// Binds: /usr, and lib64 because it is a real directory here.
	want := map[string]bool{"/usr": true, "/lib64": true}
	for _, b := range fs.Binds {
		if !want[b.Target] || !b.ReadOnly || b.Source != filepath.Join(host, b.Target) {
			t.Errorf("unexpected bind %+v", b)
		}
		delete(want, b.Target)
	}
	if len(want) != 0 {
		t.Errorf("missing binds %v", want)
	}
	for _, absent := range []string{
		"etc/shadow", "etc/gshadow", "etc/shadow-", "etc/sudoers", "etc/sudoers.d", "etc/ssh", "etc/ssl/private",
		"etc/machine-id", "etc/gitconfig", "etc/environment", "etc/profile.d/private.sh", "etc/ld.so.preload",
		"root/secret", "home/alice", "opt/x", "lib32",
	} {
		if _, err := os.Lstat(filepath.Join(sk, absent)); !os.IsNotExist(err) {
			t.Errorf("%s is in the skeleton (%v)", absent, err)
		}
	}
	links := map[string]string{
		"bin": "usr/bin", "lib": "usr/lib", "sbin": "/usr/sbin",
		"etc/alternatives/editor": "/usr/bin/vim.basic", "etc/alternatives/python": "/usr/bin/python3",
		"etc/os-release": "../usr/lib/os-release", "etc/ssl/certs/x.pem": "/usr/share/ca-certificates/mozilla/x.crt",
	}
	for p, target := range links {
		if got, err := os.Readlink(filepath.Join(sk, p)); err != nil || got != target {
			t.Errorf("%s -> %q %v, want -> %q", p, got, err, target)
		}
	}
	for p, mode := range map[string]os.FileMode{"tmp": 0o777 | os.ModeSticky, "root": 0o700, "var/tmp": 0o777 | os.ModeSticky, "usr": 0o755, "lib64": 0o755} {
		st, err := os.Lstat(filepath.Join(sk, p))
		if err != nil || !st.IsDir() || st.Mode()&(os.ModePerm|os.ModeSticky) != mode {
			t.Errorf("%s: %v %v, want dir %v", p, st.Mode(), err, mode.Perm())
		}
	}
	for p, content := range map[string]string{"etc/passwd": "root:x:0:0", "etc/profile.d/ok.sh": "A=1", "etc/ssl/openssl.cnf": "openssl", "etc/python3.11/sitecustomize.py": ""} {
		b, err := os.ReadFile(filepath.Join(sk, p))
		if err != nil || !strings.Contains(string(b), content) {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	hosts, _ := os.ReadFile(filepath.Join(sk, "etc/hosts"))
	if strings.Contains(string(hosts), "internal") || !strings.Contains(string(hosts), "localhost") {
		t.Errorf("hosts not sanitised: %q", hosts)
	}
	if !strings.HasPrefix(fs.Config.Env[0], "PATH=") {
		t.Errorf("env %v", fs.Config.Env)
	}
}

func TestHostRefreshAndReuse(t *testing.T) {
	host := fakeHost(t)
	s := newTestStore(t, host)
	resolve := func() string {
		t.Helper()
		fs, err := s.Resolve(t.Context(), "host")
		if err != nil {
			t.Fatal(err)
		}
		p, err := filepath.EvalSymlinks(fs.Lowers[0])
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	v1 := resolve()
	if v := resolve(); v != v1 {
		t.Fatalf("unchanged host rebuilt: %s then %s", v1, v)
	}
	// The host's /etc changes: the next resolve builds a new version and
	// keeps the old one for sandboxes still using it.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(host, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v2 := resolve()
	if v2 == v1 {
		t.Fatal("changed /etc/passwd not picked up")
	}
	if b, _ := os.ReadFile(filepath.Join(v2, "etc/passwd")); !strings.Contains(string(b), "bob") {
		t.Errorf("new passwd missing: %q", b)
	}
	if _, err := os.Stat(v1); err != nil {
		t.Errorf("old version removed at once: %v", err)
	}
}

// TestHostConcurrentFirstUse builds the skeleton from many stores (as if
// from many processes) at once.
func TestHostConcurrentFirstUse(t *testing.T) {
	host := fakeHost(t)
	root := t.TempDir()
	var wg sync.WaitGroup
	results := make([]string, 8)
	errs := make([]error, 8)
	for i := range results {
		wg.Go(func() {
			s := NewStore(root, Options{})
			s.hostRoot = host
			fs, err := s.Resolve(context.Background(), "host")
			if err == nil {
				results[i], err = filepath.EvalSymlinks(fs.Lowers[0])
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || results[i] != results[0] {
			t.Fatalf("resolver %d: %q %v (first %q)", i, results[i], errs[i], results[0])
		}
	}
	ents, _ := os.ReadDir(filepath.Join(root, "images", "host"))
	if len(ents) != 2 { // one version and the link
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("leftovers in the image dir: %v", names)
	}
}

// TestRealHost builds the skeleton from this machine's filesystem.
func TestRealHost(t *testing.T) {
	s := NewStore(t.TempDir(), Options{})
	fs, err := s.Resolve(t.Context(), "host")
	if err != nil {
		t.Fatal(err)
	}
	sk, _ := filepath.EvalSymlinks(fs.Lowers[0])
	for _, absent := range []string{"etc/shadow", "etc/gshadow", "etc/sudoers", "etc/ssh", "etc/ssl/private", "etc/machine-id", "root/.bashrc", "work", "home/user"} {
		if _, err := os.Lstat(filepath.Join(sk, absent)); !os.IsNotExist(err) {
			t.Errorf("%s present in the skeleton of this host", absent)
		}
	}
	if _, err := os.Stat(filepath.Join(sk, "etc/passwd")); err != nil {
		t.Error(err)
	}
	if st, err := os.Lstat("/etc/alternatives"); err == nil && st.IsDir() {
		ents, _ := os.ReadDir("/etc/alternatives")
		for _, e := range ents {
			want, _ := os.Readlink(filepath.Join("/etc/alternatives", e.Name()))
			if want == "" {
				continue
			}
			got, err := os.Readlink(filepath.Join(sk, "etc/alternatives", e.Name()))
			if err != nil || got != want {
				t.Errorf("alternatives/%s -> %q %v, want %q", e.Name(), got, err, want)
			}
		}
	}
}

func TestSecretNames(t *testing.T) {
	for _, n := range []string{"shadow", "shadow-", "gshadow", "sudoers", "sudoers.d", "ssh", "private", "machine-id",
		"ld.so.preload", "server.key", "ssh_host_rsa_key", "cert.p12", "my_secret.conf", "aws-credentials", "TOKEN", "password.txt"} {
		if !secretName(n) {
			t.Errorf("%s not treated as secret", n)
		}
	}
	for _, n := range []string{"passwd", "group", "hosts", "ssl", "certs", "ca-certificates.crt", "alternatives", "python3.11", "keyboard"} {
		if secretName(n) {
			t.Errorf("%s treated as secret", n)
		}
	}
	for _, n := range []string{"gitconfig", "npmrc", "pip.conf", "wgetrc", "environment", "resolv.conf", "subuid", "sudo.conf"} {
		if etcAllowed(n) {
			t.Errorf("/etc/%s allowed", n)
		}
	}
}
