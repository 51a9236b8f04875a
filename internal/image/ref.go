package image

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// Docker Hub's names, as references without a registry expand to them.
const (
	defaultRegistry  = "index.docker.io"
	defaultNamespace = "library"
	defaultTag       = "latest"
)

// Ref is an image reference in canonical form: python:3.12 is
// index.docker.io/library/python:3.12.
//
// ParseRef reads references exactly as go-containerregistry's
// name.ParseReference does, which the fetchers use: records written by a
// pull must be found again by the same words (ref_test.go checks the two
// against each other). The store keeps its own parser so that binaries
// which only read the store need not link the registry client.
type Ref struct {
	Registry   string // index.docker.io for Docker Hub
	Repository string // library/python
	Tag        string // "" if Digest is set
	Digest     string // algorithm:hex, or ""
}

// Repo is the registry and repository: index.docker.io/library/python.
func (r Ref) Repo() string { return r.Registry + "/" + r.Repository }

// Identifier is the tag or, for a reference by digest, the digest.
func (r Ref) Identifier() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// Name is the full reference: repo:tag or repo@digest.
func (r Ref) Name() string {
	if r.Digest != "" {
		return r.Repo() + "@" + r.Digest
	}
	return r.Repo() + ":" + r.Tag
}

// ParseRef parses a user's image reference the way docker does: name,
// name:tag or name@digest, with Docker Hub and "latest" filled in.
func ParseRef(s string) (Ref, error) {
	if r, err := parseTagged(s); err == nil {
		return r, nil
	}
	if r, err := parseDigested(s); err == nil {
		return r, nil
	}
	return Ref{}, fmt.Errorf("image reference %q: want name[:tag] or name@algorithm:hex: %w", s, errdefs.ErrInvalidArgument)
}

const (
	tagChars        = "abcdefghijklmnopqrstuvwxyz0123456789_-.ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	repositoryChars = "abcdefghijklmnopqrstuvwxyz0123456789_-./"
)

var errBadRef = fmt.Errorf("bad reference: %w", errdefs.ErrInvalidArgument)

// parseTagged reads [registry/]repository[:tag]. A last colon-separated
// part containing a slash is a registry port, not a tag.
func parseTagged(s string) (Ref, error) {
	base, tag := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[i+1:], "/") {
		base, tag = s[:i], s[i+1:]
		if !validElement(tag, tagChars, 1, 128) {
			return Ref{}, errBadRef
		}
	}
	if tag == "" {
		tag = defaultTag
	}
	r, err := parseRepo(base)
	r.Tag = tag
	return r, err
}

// parseDigested reads [registry/]repository[:tag]@digest; a tag next to
// a digest is dropped.
func parseDigested(s string) (Ref, error) {
	base, dig, ok := strings.Cut(s, "@")
	if !ok || strings.Contains(dig, "@") || !validDigest(dig) {
		return Ref{}, errBadRef
	}
	if t, err := parseTagged(base); err == nil {
		base = t.Repo()
	}
	r, err := parseRepo(base)
	r.Digest = dig
	return r, err
}

// parseRepo reads [registry/]repository. The first path part is a
// registry only if it is localhost or has a dot or a colon in it.
func parseRepo(s string) (Ref, error) {
	if s == "" {
		return Ref{}, errBadRef
	}
	registry, repo := "", s
	if first, rest, ok := strings.Cut(s, "/"); ok && (first == "localhost" || strings.ContainsAny(first, ".:")) {
		registry, repo = first, rest
	}
	if !validElement(repo, repositoryChars, 1, 255) {
		return Ref{}, errBadRef
	}
	// A registry must be an RFC 3986 authority: host[:port], nothing else.
	if u, err := url.Parse("//" + registry); err != nil || u.Host != registry {
		return Ref{}, errBadRef
	}
	switch registry {
	case "", "docker.io":
		registry = defaultRegistry
	}
	if registry == defaultRegistry && !strings.Contains(repo, "/") {
		repo = defaultNamespace + "/" + repo
	}
	return Ref{Registry: registry, Repository: repo}, nil
}

func validElement(s, allowed string, minRunes, maxRunes int) bool {
	if n := utf8.RuneCountInString(s); n < minRunes || n > maxRunes {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune(allowed, c) {
			return false
		}
	}
	return true
}

// validDigest accepts the digests registries serve: sha256, sha384 or
// sha512 with lower-case hex of the algorithm's length.
func validDigest(d string) bool {
	alg, hex, _ := strings.Cut(d, ":")
	want := 0
	switch alg {
	case "sha256":
		want = 64
	case "sha384":
		want = 96
	case "sha512":
		want = 128
	}
	if want == 0 || len(hex) != want {
		return false
	}
	for _, c := range hex {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
