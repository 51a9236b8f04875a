package ingest

import (
	"crypto/tls"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// secureTransport enforces "insecure by explicit flag only".
// go-containerregistry talks plain HTTP to localhost and RFC 1918
// registries on its own; this rewrites such requests to HTTPS unless the
// registry was named insecure, and only insecure registries get TLS
// without certificate checks.
type secureTransport struct {
	insecure func(host string) bool
	verified http.RoundTripper
	lax      http.RoundTripper
}

func (f *Fetcher) transport() http.RoundTripper {
	if f.opts.Transport != nil {
		return &secureTransport{insecure: f.insecure, verified: f.opts.Transport, lax: f.opts.Transport}
	}
	base := remote.DefaultTransport.(*http.Transport)
	lax := base.Clone()
	lax.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // only for registries the user named insecure
	return &secureTransport{insecure: f.insecure, verified: base, lax: lax}
}

func (t *secureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.insecure(req.URL.Host) {
		return t.lax.RoundTrip(req)
	}
	if req.URL.Scheme == "http" {
		req = req.Clone(req.Context())
		req.URL.Scheme = "https"
	}
	return t.verified.RoundTrip(req)
}
