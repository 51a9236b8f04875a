package netstack

import (
	"net/netip"
	"sync"
	"time"
)

// bindingTTL is how long an address stays bound to a name after the
// sandbox last resolved the name to it: longer than the DNS answers' TTL,
// as programs cache answers longer than told.
const bindingTTL = 30 * time.Minute

// names remembers which names resolve to which addresses: what the
// sandbox's resolver answered, and the addresses of denied names.
type names struct {
	mu     sync.Mutex
	byAddr map[netip.Addr]map[string]time.Time // name → expiry
}

func newNames() *names { return &names{byAddr: map[netip.Addr]map[string]time.Time{}} }

func (n *names) bind(name string, addrs []netip.Addr, ttl time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	exp := time.Now().Add(ttl)
	for _, a := range addrs {
		a = a.Unmap()
		m := n.byAddr[a]
		if m == nil {
			m = map[string]time.Time{}
			n.byAddr[a] = m
		}
		if exp.After(m[name]) {
			m[name] = exp
		}
	}
}

// of returns the live names of a; expired ones are dropped.
func (n *names) of(a netip.Addr) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	a = a.Unmap()
	now := time.Now()
	var out []string
	for name, exp := range n.byAddr[a] {
		if now.After(exp) {
			delete(n.byAddr[a], name)
			continue
		}
		out = append(out, name)
	}
	if len(n.byAddr[a]) == 0 {
		delete(n.byAddr, a)
	}
	return out
}
