package image

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// refSeeds cover every branch of the reference grammar, valid or not.
var refSeeds = []string{
	"alpine", "alpine:3.20", "library/alpine", "docker.io/alpine", "docker.io/library/alpine:edge",
	"index.docker.io/alpine", "ghcr.io/owner/repo", "ghcr.io/owner/repo:v1.2-rc_3",
	"localhost/app", "localhost:5000/app", "localhost:5000/app:1", "127.0.0.1:5000/a/b/c:tag",
	"[::1]:5000/app", "registry.example/app@sha256:" + strings.Repeat("a", 64),
	"alpine:3.20@sha256:" + strings.Repeat("0", 64), "alpine@sha512:" + strings.Repeat("f", 128),
	"alpine@sha384:" + strings.Repeat("1", 96), "alpine@md5:" + strings.Repeat("1", 32),
	"alpine@sha256:" + strings.Repeat("A", 64), "alpine@sha256:abc", "alpine@", "@sha256:",
	"alpine:", ":tag", "", "/", "a/", "/a", "Alpine", "alpine:" + strings.Repeat("t", 129),
	"alpine:t@x@y", "user@host/app", "host:99999/app", "host:port/app", "a..b/c", "a:b:c",
	"ex ample.com/app", "exämple.com/app", "app:tag/with/slash", "a/b:c/d:e",
	"localhost:5000/app@sha256:" + strings.Repeat("b", 64), "h.io/" + strings.Repeat("r", 256),
}

func TestParseRefAgreesWithGoContainerRegistry(t *testing.T) {
	for _, s := range refSeeds {
		checkRefAgrees(t, s)
	}
	// Spot checks of the canonical forms, so that agreement is not
	// agreement on something else.
	for in, want := range map[string]string{
		"alpine":                "index.docker.io/library/alpine:latest",
		"docker.io/alpine:3.20": "index.docker.io/library/alpine:3.20",
		"localhost:5000/app":    "localhost:5000/app:latest",
		"ghcr.io/o/r@sha256:" + strings.Repeat("a", 64): "ghcr.io/o/r@sha256:" + strings.Repeat("a", 64),
	} {
		r, err := ParseRef(in)
		if err != nil || r.Name() != want {
			t.Errorf("ParseRef(%q) = %q, %v; want %q", in, r.Name(), err, want)
		}
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range refSeeds {
		f.Add(s)
	}
	f.Fuzz(checkRefAgrees)
}

func checkRefAgrees(t *testing.T, s string) {
	t.Helper()
	want, wantErr := name.ParseReference(s)
	got, err := ParseRef(s)
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("%q: ParseRef error %v, go-containerregistry error %v", s, err, wantErr)
	case err != nil:
		return
	case got.Name() != want.Name() || got.Identifier() != want.Identifier() ||
		got.Repo() != want.Context().Name() || got.Registry != want.Context().RegistryStr():
		t.Fatalf("%q: ParseRef gives %q (%q, %q), go-containerregistry %q (%q, %q)", s,
			got.Name(), got.Repo(), got.Identifier(), want.Name(), want.Context().Name(), want.Identifier())
	}
}
