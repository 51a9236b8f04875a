package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
	"github.com/agentkernel-go/agentkernel/internal/image"
)

// retryBackoff spaces retries of failed registry requests: 5 tries over
// about 4 seconds.
var retryBackoff = remote.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 5}

// pullAttempts is how often a pull is tried when the registry connection
// breaks; layers finished by an attempt are not downloaded again.
const pullAttempts = 3

// Pull downloads ref from its registry into the store and returns it,
// telling progress (if not nil) about each layer it downloads. Layers
// already in the store are not downloaded again.
func (f *Fetcher) Pull(ctx context.Context, ref string, progress image.Progress) (*image.Image, error) {
	r, err := f.parseRef(ref)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		img, err := f.pull(ctx, r, progress)
		if err == nil || attempt == pullAttempts || !errors.Is(err, errdefs.ErrUnavailable) {
			return img, err
		}
		select {
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		case <-ctx.Done():
			return nil, err
		}
	}
}

func (f *Fetcher) pull(ctx context.Context, r name.Reference, progress image.Progress) (*image.Image, error) {
	ref := r.String()
	plat, err := f.platform()
	if err != nil {
		return nil, err
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(f.transport()),
		remote.WithAuthFromKeychain(authn.NewMultiKeychain(envKeychain{f.opts.Getenv}, authn.DefaultKeychain)),
		remote.WithPlatform(plat),
		remote.WithRetryBackoff(retryBackoff),
		remote.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout),
		remote.WithUserAgent("agentkernel"),
	}
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, registryError(r, err))
	}
	img, err := desc.Image()
	if err != nil {
		if strings.Contains(err.Error(), "no child with platform") {
			return nil, fmt.Errorf("pulling %s: no image for platform %s in its index: %w", ref, plat, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("pulling %s: %w", ref, registryError(r, err))
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, registryError(r, err))
	}
	rec, err := f.save(ctx, r.Name(), img, fromBlob, progress, "pull", digest.String())
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, registryError(r, err))
	}
	return rec, nil
}

// platform is the platform to pick from indexes.
func (f *Fetcher) platform() (v1.Platform, error) {
	if f.opts.Platform == "" {
		p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
		if runtime.GOARCH == "arm64" {
			p.Variant = "v8"
		}
		return p, nil
	}
	p, err := v1.ParsePlatform(f.opts.Platform)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant], e.g. linux/arm64: %w", f.opts.Platform, errdefs.ErrInvalidArgument)
	}
	return *p, nil
}

// registryError gives registry failures an error kind and a message that
// says what to do.
func registryError(r name.Reference, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("registry %s refused access (HTTP %d): log in with `docker login` or set AGENTKERNEL_REGISTRY_USERNAME/PASSWORD: %w",
				r.Context().RegistryStr(), terr.StatusCode, errdefs.ErrPermissionDenied)
		case http.StatusNotFound:
			return fmt.Errorf("image %s not found in registry %s: %w", r.Context().RepositoryStr()+identifierSuffix(r), r.Context().RegistryStr(), errdefs.ErrNotFound)
		}
		for _, d := range terr.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return fmt.Errorf("image %s not found in registry %s: %w", r.Context().RepositoryStr()+identifierSuffix(r), r.Context().RegistryStr(), errdefs.ErrNotFound)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("registry %s refused access: log in with `docker login` or set AGENTKERNEL_REGISTRY_USERNAME/PASSWORD: %w", r.Context().RegistryStr(), errdefs.ErrPermissionDenied)
			}
		}
		if terr.StatusCode >= 500 {
			return fmt.Errorf("%w: %w", err, errdefs.ErrUnavailable)
		}
		return err
	}
	if errdefs.Kind(err) != errdefs.ErrInternal {
		return err
	}
	if transient(err) || errors.Is(err, io.ErrUnexpectedEOF) {
		// A body cut short: the connection broke.
		return fmt.Errorf("registry %s: %w: %w", r.Context().RegistryStr(), err, errdefs.ErrUnavailable)
	}
	return err
}

func identifierSuffix(r name.Reference) string {
	if strings.HasPrefix(r.Identifier(), "sha256:") {
		return "@" + r.Identifier()
	}
	return ":" + r.Identifier()
}
