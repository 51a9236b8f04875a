package sandbox

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// aliases maps every accepted backend name to its backend type.
var aliases = map[string]Type{
	"native": Native, "namespaces": Native, "linux": Native,
	"microvm": MicroVM, "qemu": MicroVM, "vm": MicroVM,
	"firecracker": Firecracker,
	"docker":      Docker,
	"podman":      Podman,
	"gvisor":      GVisor, "runsc": GVisor,
	"kubernetes": Kubernetes, "k8s": Kubernetes,
	"nomad": Nomad,
}

// ParseType resolves a backend name or alias (case-insensitive).
func ParseType(name string) (Type, error) {
	t, ok := aliases[strings.ToLower(name)]
	if !ok {
		names := make([]string, 0, len(aliases))
		for n := range aliases {
			names = append(names, n)
		}
		slices.Sort(names)
		return "", fmt.Errorf("unknown backend %q (known: %s): %w", name, strings.Join(names, ", "), errdefs.ErrInvalidArgument)
	}
	return t, nil
}

// KnownTypes lists every backend type agentkernel knows of, built in or not.
func KnownTypes() []Type {
	return []Type{Native, MicroVM, Firecracker, Docker, Podman, GVisor, Kubernetes, Nomad}
}

// Registry holds the backends built into this binary.
type Registry struct {
	backends []Backend
}

// NewRegistry returns a registry of the given backends.
func NewRegistry(backends ...Backend) *Registry {
	return &Registry{backends: backends}
}

// Backends returns the registered backends.
func (r *Registry) Backends() []Backend {
	return slices.Clone(r.backends)
}

// Get returns the backend for a name or alias. A known backend that is not
// built in yields errdefs.ErrNotImplemented; it does not probe.
func (r *Registry) Get(name string) (Backend, error) {
	t, err := ParseType(name)
	if err != nil {
		return nil, err
	}
	for _, b := range r.backends {
		if b.Type() == t {
			return b, nil
		}
	}
	return nil, fmt.Errorf("backend %s: %w in this build", t, errdefs.ErrNotImplemented)
}

// Choice is one backend's verdict during detection.
type Choice struct {
	Type      Type
	Isolation Isolation
	Built     bool
	Err       error // nil: usable
	// NotAuto says why a usable backend is not chosen by detection.
	NotAuto error
}

// CachePruner is implemented by a backend that keeps its own forms of the
// image store's layers (a microVM's layer disks): PruneCache drops those
// whose layer the store no longer has. The manager calls it after pruning
// images.
type CachePruner interface {
	PruneCache(ctx context.Context) error
}

// AutoSelector is implemented by a backend that can be usable yet too
// costly here to be chosen without being asked for (microVMs under
// software emulation): AutoSelect returns why.
type AutoSelector interface {
	AutoSelect() error
}

// Detect probes every known backend and picks the strongest usable one. The
// returned choices explain the decision, strongest first.
func (r *Registry) Detect(ctx context.Context) (Backend, []Choice, error) {
	var choices []Choice
	var best Backend
	for _, t := range KnownTypes() {
		c := Choice{Type: t}
		for _, b := range r.backends {
			if b.Type() == t {
				c.Built, c.Isolation = true, b.Isolation()
				c.Err = b.Probe(ctx)
				if a, ok := b.(AutoSelector); ok && c.Err == nil {
					c.NotAuto = a.AutoSelect()
				}
				if c.Err == nil && c.NotAuto == nil && (best == nil || b.Isolation() > best.Isolation()) {
					best = b
				}
			}
		}
		if !c.Built {
			c.Err = fmt.Errorf("%w in this build", errdefs.ErrNotImplemented)
		}
		choices = append(choices, c)
	}
	slices.SortStableFunc(choices, func(a, b Choice) int { return int(b.Isolation - a.Isolation) })
	if best == nil {
		return nil, choices, fmt.Errorf("no sandbox backend can run on this host (run `agentkernel doctor`): %w", errdefs.ErrUnavailable)
	}
	return best, choices, nil
}
