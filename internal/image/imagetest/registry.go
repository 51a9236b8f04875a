package imagetest

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is go-containerregistry's in-memory registry on a loopback
// port, with knobs for the failures the tests need.
type Registry struct {
	t      testing.TB
	server *httptest.Server
	// Host is host:port, the registry part of references.
	Host string

	mu       sync.Mutex
	gets     map[string]int // blob GETs by digest
	user     string
	password string
	corrupt  map[string]bool
	cut      int  // cut this many more blob responses midway
	dead     bool // cut every blob response midway
	// stall, if set, holds every blob response halfway until it is
	// closed; stalled is signalled when one is held.
	stall   chan struct{}
	stalled chan struct{}
}

// NewRegistry starts a registry that stops when the test ends.
func NewRegistry(t testing.TB) *Registry {
	r := &Registry{t: t, gets: map[string]int{}, corrupt: map[string]bool{}}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.serve(inner, w, req)
	}))
	t.Cleanup(r.server.Close)
	r.Host = strings.TrimPrefix(r.server.URL, "http://")
	return r
}

func (r *Registry) serve(inner http.Handler, w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	user, password := r.user, r.password
	r.mu.Unlock()
	if user != "" {
		u, p, ok := req.BasicAuth()
		if !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
	}
	digest, isBlob := blobDigest(req)
	if !isBlob || req.Method != http.MethodGet {
		inner.ServeHTTP(w, req)
		return
	}
	r.mu.Lock()
	r.gets[digest]++
	corrupt := r.corrupt[digest]
	stall, stalled := r.stall, r.stalled
	cut := r.dead || r.cut > 0
	if r.cut > 0 {
		r.cut--
	}
	r.mu.Unlock()
	if !corrupt && !cut && stall == nil {
		inner.ServeHTTP(w, req)
		return
	}
	rec := httptest.NewRecorder()
	inner.ServeHTTP(rec, req)
	body := rec.Body.Bytes()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	if corrupt && len(body) > 0 {
		body = append([]byte(nil), body...)
		body[len(body)/2] ^= 0xff
	}
	w.WriteHeader(rec.Code)
	if stall != nil {
		w.Write(body[:len(body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case stalled <- struct{}{}:
		default:
		}
		select {
		case <-stall:
		case <-req.Context().Done():
			return
		}
		w.Write(body[len(body)/2:])
		return
	}
	if !cut {
		w.Write(body)
		return
	}
	// Send half, then drop the connection: a registry dying mid-download.
	w.Write(body[:len(body)/2])
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
		}
	}
}

func blobDigest(req *http.Request) (string, bool) {
	i := strings.Index(req.URL.Path, "/blobs/sha256:")
	if i < 0 {
		return "", false
	}
	return req.URL.Path[i+len("/blobs/"):], true
}

// Ref is a reference to repo:tag in this registry.
func (r *Registry) Ref(repoTag string) string { return r.Host + "/" + repoTag }

// Push uploads img as ref (a full reference in this registry).
func (r *Registry) Push(ref string, img v1.Image) {
	r.t.Helper()
	n, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := remote.Write(n, img, r.auth()); err != nil {
		r.t.Fatal(err)
	}
}

// PushIndex uploads idx as ref.
func (r *Registry) PushIndex(ref string, idx v1.ImageIndex) {
	r.t.Helper()
	n, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := remote.WriteIndex(n, idx, r.auth()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *Registry) auth() remote.Option {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.user == "" {
		return remote.WithAuthFromKeychain(noKeychain{})
	}
	return remote.WithAuth(&basic{r.user, r.password})
}

// RequireAuth makes every request need these basic credentials.
func (r *Registry) RequireAuth(user, password string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.user, r.password = user, password
}

// Corrupt flips a byte in every response for blob digest.
func (r *Registry) Corrupt(digest v1.Hash) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.corrupt[digest.String()] = true
}

// CutNext drops the connection halfway through the next n blob downloads.
func (r *Registry) CutNext(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = n
}

// SetDead makes every blob download break halfway (or stops that).
func (r *Registry) SetDead(dead bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dead = dead
}

// BlobGets is how often blob digest was downloaded.
func (r *Registry) BlobGets(digest v1.Hash) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets[digest.String()]
}

// Stall holds blob downloads halfway. It returns a channel that receives
// when one is held, and a function that lets them all finish.
func (r *Registry) Stall() (<-chan struct{}, func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stall, r.stalled = make(chan struct{}), make(chan struct{}, 1)
	stall, stalled := r.stall, r.stalled
	var once sync.Once
	return stalled, func() {
		once.Do(func() {
			r.mu.Lock()
			r.stall = nil
			r.mu.Unlock()
			close(stall)
		})
	}
}
