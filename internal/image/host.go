package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/agentkernel-go/agentkernel/internal/sandbox"
)

// skeletonVersion changes whenever the skeleton's construction changes, so
// stores built by older code are rebuilt.
const skeletonVersion = "2"

// defaultPath is the PATH of the host image.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// currentLink names the symlink in <root>/images/host pointing at the
// current skeleton version; RootFS.Lowers names the link, so a sandbox
// picks up a refreshed skeleton at its next start.
const currentLink = "current"

// oldVersionAge is how long a superseded skeleton is kept for sandboxes
// that still have it mounted.
const oldVersionAge = 24 * time.Hour

// usrMerged are the top-level entries that are symlinks into /usr on a
// merged-/usr host or real directories elsewhere; they are bound read-only
// when they are directories.
var usrMerged = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// skeletonDirs are created empty in the skeleton, with their modes. usr and
// any real usrMerged directory are created as bind targets.
var skeletonDirs = []struct {
	path string
	mode fs.FileMode
}{
	{"usr", 0o755},
	{"etc", 0o755},
	{"tmp", 0o777 | fs.ModeSticky},
	{"root", 0o700},
	{"home", 0o755},
	{"var", 0o755},
	{"var/tmp", 0o777 | fs.ModeSticky},
	{"var/cache", 0o755},
	{"var/lib", 0o755},
	{"var/log", 0o755},
	{"run", 0o755},
	{"run/lock", 0o777 | fs.ModeSticky},
	{"proc", 0o555},
	{"sys", 0o555},
	{"dev", 0o755},
	{"mnt", 0o755},
	{"opt", 0o755},
	{"srv", 0o755},
	{"media", 0o755},
}

// resolveHost returns the host pseudo-image, materialising or refreshing
// its skeleton first when needed.
func (s *Store) resolveHost() (sandbox.RootFS, error) {
	dir := s.hostDir()
	fp, err := fingerprint(s.hostRoot)
	if err != nil {
		return sandbox.RootFS{}, fmt.Errorf("host image: %w", err)
	}
	version := "v-" + fp
	if cur, err := os.Readlink(filepath.Join(dir, currentLink)); err != nil || cur != version {
		if err := s.materialise(dir, version); err != nil {
			return sandbox.RootFS{}, fmt.Errorf("host image: %w", err)
		}
	}
	binds := []sandbox.Mount{{Source: filepath.Join(s.hostRoot, "usr"), Target: "/usr", ReadOnly: true}}
	for _, name := range usrMerged {
		p := filepath.Join(s.hostRoot, name)
		if st, err := os.Lstat(p); err == nil && st.IsDir() {
			binds = append(binds, sandbox.Mount{Source: p, Target: "/" + name, ReadOnly: true})
		}
	}
	return sandbox.RootFS{
		Image:  sandbox.DefaultImage,
		Lowers: []string{filepath.Join(dir, currentLink)},
		Binds:  binds,
		Config: sandbox.ImageConfig{Env: []string{"PATH=" + defaultPath}},
	}, nil
}

// materialise builds skeleton version in a temporary directory, renames it
// into place and points the current link at it. Concurrent builders (other
// processes) race harmlessly: the first rename wins, the others discard
// their copy, and all of them point the link at the same name.
func (s *Store) materialise(dir, version string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	final := filepath.Join(dir, version)
	if _, err := os.Stat(final); err != nil {
		tmp, err := os.MkdirTemp(dir, ".build-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if err := os.Chmod(tmp, 0o755); err != nil {
			return err
		}
		if err := buildSkeleton(s.hostRoot, tmp); err != nil {
			return err
		}
		if err := os.Rename(tmp, final); err != nil {
			if _, statErr := os.Stat(final); statErr != nil {
				return err // not a lost race
			}
		}
	}
	link, err := os.MkdirTemp(dir, ".link-")
	if err != nil {
		return err
	}
	os.Remove(link)
	if err := os.Symlink(version, link); err != nil {
		return err
	}
	if err := os.Rename(link, filepath.Join(dir, currentLink)); err != nil {
		os.Remove(link)
		return err
	}
	pruneOld(dir, version)
	return nil
}

// pruneOld removes skeleton versions superseded long enough ago that no
// running sandbox should still use them, and stale temporary builds.
func pruneOld(dir, keep string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		name := e.Name()
		if name == keep || name == currentLink || !(strings.HasPrefix(name, "v-") || strings.HasPrefix(name, ".build-")) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > oldVersionAge {
			os.RemoveAll(filepath.Join(dir, name))
		}
	}
}

// fingerprint cheaply summarises what the skeleton is built from: the
// host's top-level entries and the metadata of every allowed /etc entry
// (a few dozen lstat calls). Replacing, adding or removing any of them, or
// any entry of an allowed /etc directory, changes it; a file edited in
// place inside such a directory does not (that is what keeps it cheap).
func fingerprint(hostRoot string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "skeleton %s\n", skeletonVersion)
	top, err := os.ReadDir(hostRoot)
	if err != nil {
		return "", err
	}
	for _, e := range top {
		target, _ := os.Readlink(filepath.Join(hostRoot, e.Name()))
		fmt.Fprintf(h, "/%s %v %s\n", e.Name(), e.Type(), target)
	}
	etc := filepath.Join(hostRoot, "etc")
	ents, err := os.ReadDir(etc)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		if !etcAllowed(e.Name()) {
			continue
		}
		st, err := os.Lstat(filepath.Join(etc, e.Name()))
		if err != nil {
			continue
		}
		// A directory's mtime changes when entries are added, removed or
		// renamed over (how packages and editors update files).
		fmt.Fprintf(h, "etc/%s %v %d %d\n", e.Name(), st.Mode(), st.Size(), st.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// buildSkeleton writes the skeleton of hostRoot into dst (an empty directory).
func buildSkeleton(hostRoot, dst string) error {
	for _, d := range skeletonDirs {
		p := filepath.Join(dst, d.path)
		if err := os.Mkdir(p, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil { // past the umask
			return err
		}
	}
	// Merged-/usr links (bin -> usr/bin) as they are; real directories
	// become bind targets.
	for _, name := range usrMerged {
		src := filepath.Join(hostRoot, name)
		st, err := os.Lstat(src)
		switch {
		case err != nil:
			continue
		case st.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return err
			}
			if t := strings.TrimPrefix(filepath.Clean(target), "/"); !strings.HasPrefix(t, "usr/") {
				continue // points somewhere the image does not have
			}
			if err := os.Symlink(target, filepath.Join(dst, name)); err != nil {
				return err
			}
		case st.IsDir():
			if err := os.Mkdir(filepath.Join(dst, name), 0o755); err != nil {
				return err
			}
		}
	}
	if err := copyEtc(filepath.Join(hostRoot, "etc"), filepath.Join(dst, "etc")); err != nil {
		return err
	}
	return writeGenerated(filepath.Join(dst, "etc"))
}

// writeGenerated writes the /etc files the skeleton generates instead of
// copying: hosts (the host's may name internal machines; the backend adds
// the sandbox's own name per sandbox).
func writeGenerated(etc string) error {
	const hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	return os.WriteFile(filepath.Join(etc, "hosts"), []byte(hosts), 0o644)
}

// errSkip marks an entry deliberately left out.
var errSkip = errors.New("skipped")

// copyEtc copies the allowed entries of the host's /etc.
func copyEtc(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if !etcAllowed(name) {
			continue
		}
		if name == "ssl" {
			// Only the public parts: CA certificates and the config.
			if err := os.Mkdir(filepath.Join(dst, "ssl"), 0o755); err != nil {
				return err
			}
			for _, sub := range []string{"certs", "openssl.cnf"} {
				if err := copyTree(filepath.Join(src, "ssl", sub), filepath.Join(dst, "ssl", sub)); err != nil && !errors.Is(err, errSkip) && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			continue
		}
		if err := copyTree(filepath.Join(src, name), filepath.Join(dst, name)); err != nil && !errors.Is(err, errSkip) && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// copyTree copies a file, symlink or directory tree, leaving out secrets
// and anything not world-readable. Special files are skipped; set-id bits
// are dropped.
func copyTree(src, dst string) error {
	st, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if secretName(filepath.Base(src)) {
		return errSkip
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	case st.IsDir():
		if st.Mode().Perm()&0o005 != 0o005 {
			return errSkip // not world-listable: private
		}
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := copyTree(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil && !errors.Is(err, errSkip) {
				return err
			}
		}
		return nil
	case st.Mode().IsRegular():
		if st.Mode().Perm()&0o004 == 0 {
			return errSkip // not world-readable: private
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		mode := st.Mode().Perm() & 0o755
		if err := os.WriteFile(dst, b, mode); err != nil {
			return err
		}
		return os.Chmod(dst, mode)
	}
	return errSkip
}

// etcAllowed lists the top-level /etc entries the host image copies: name
// service and linker configuration, locale, time zone, shells' startup
// files, CA certificates, interpreter configuration, terminfo. Everything
// else — shadow files, sudoers, ssh, private keys, machine-id, package
// manager and tool configs that may hold tokens (gitconfig, npmrc,
// pip.conf, wgetrc), /etc/environment (often proxy credentials and API
// keys), ld.so.preload — is left out.
func etcAllowed(name string) bool {
	if secretName(name) {
		return false
	}
	if slices.Contains(etcAllowlist, name) {
		return true
	}
	for _, pat := range etcAllowPatterns {
		if ok, _ := filepath.Match(pat, name); ok {
			return true
		}
	}
	return false
}

var etcAllowlist = []string{
	"passwd", "group", "nsswitch.conf", "host.conf", "gai.conf", "protocols", "services", "networks", "rpc", "ethertypes",
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d",
	"os-release", "debian_version", "lsb-release", "issue",
	"alternatives", "ssl", "ca-certificates.conf",
	"localtime", "timezone", "locale.alias", "locale.gen", "locale.conf",
	"profile", "profile.d", "bash.bashrc", "inputrc", "shells", "skel", "login.defs",
	"mime.types", "mailcap", "magic", "magic.mime", "manpath.config", "fonts",
	"perl", "terminfo", "vim", "mtab",
}

var etcAllowPatterns = []string{"python3*"}

// secretName reports names that are never copied, wherever they appear.
func secretName(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "ssh", "private", "machine-id", "ld.so.preload", ".pwd.lock":
		return true
	}
	for _, p := range []string{"shadow", "gshadow", "sudoers"} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	for _, s := range []string{".key", "_key", ".p12", ".pfx"} {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	for _, c := range []string{"secret", "credential", "token", "password"} {
		if strings.Contains(n, c) {
			return true
		}
	}
	return false
}
