package agent

import (
	"net/http"
	"net/url"
	"testing"
)

// FuzzQuery feeds arbitrary query strings to the file routes' parsers:
// accepted paths are clean and absolute, accepted modes fit chmod(2).
func FuzzQuery(f *testing.F) {
	f.Add("path=/tmp/x&mode=0644&mkdirs=1")
	f.Add("path=relative&mode=9")
	f.Add("path=%2Fa%2F..%2Fb&mode=7777")
	f.Add("path=/a%00b&mode=-1&recursive=true")
	f.Add("path=&path=/x&mode=010000")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := &http.Request{URL: &url.URL{Path: "/v1/files", RawQuery: rawQuery}}
		if p, err := queryPath(r); err == nil && !isCleanAbs(p) {
			t.Fatalf("accepted path %q", p)
		}
		if m, err := queryMode(r, 0o644); err == nil && modeBits(m) > 0o7777 {
			t.Fatalf("accepted mode %o", modeBits(m))
		}
		_ = queryBool(r, "mkdirs")
	})
}

func TestModeBitsRoundTrip(t *testing.T) {
	for m := uint32(0); m <= 0o7777; m++ {
		if got := modeBits(unixMode(m)); got != m {
			t.Fatalf("%o -> %o", m, got)
		}
	}
}
