package hostlocal

import (
	"fmt"
	"net/netip"

	"github.com/berth-dev/berth/internal/cni"
)

// usable reports whether a may be handed out: inside the pool, not the gateway, not reserved.
func (c *Config) usable(p pool, a netip.Addr) bool {
	if !p.contains(a) || a == p.gateway {
		return false
	}
	for _, r := range c.Reserved {
		if r.Contains(a) {
			return false
		}
	}
	return true
}

// allocate picks one address from range set i for o: the requested one if a request falls in
// this set, otherwise the next free address after the last one handed out (round robin, so that
// a just-released address is not reused at once).
func (c *Config) allocate(s *store, i int, o owner) (netip.Addr, pool, error) {
	set := c.Sets[i]
	for _, r := range c.Requested {
		for _, p := range set {
			if !p.contains(r) {
				continue
			}
			if !c.usable(p, r) {
				return netip.Addr{}, pool{}, fmt.Errorf("requested IP %s is the gateway or reserved: %w", r, cni.ErrInvalidConfig)
			}
			ok, err := s.reserve(r, o)
			if err != nil {
				return netip.Addr{}, pool{}, err
			}
			if !ok {
				return netip.Addr{}, pool{}, fmt.Errorf("requested IP %s is already allocated: %w", r, cni.ErrExists)
			}
			return r, p, nil
		}
	}
	// Start after the last reserved address if it is still inside this set's pools.
	pi, next := 0, set[0].start
	if last, ok := s.lastReserved(i); ok {
		for j, p := range set {
			if p.contains(last) {
				pi, next = j, last.Next()
				if !next.IsValid() || !p.contains(next) {
					pi = (j + 1) % len(set)
					next = set[pi].start
				}
				break
			}
		}
	}
	startPool, startAddr := pi, next
	for {
		p := set[pi]
		if c.usable(p, next) && !s.taken(next) {
			ok, err := s.reserve(next, o)
			if err != nil {
				return netip.Addr{}, pool{}, err
			}
			if ok {
				if err := s.setLastReserved(i, next); err != nil {
					s.release(next)
					return netip.Addr{}, pool{}, err
				}
				return next, p, nil
			}
		}
		n := next.Next()
		if !n.IsValid() || !p.contains(n) {
			pi = (pi + 1) % len(set)
			n = set[pi].start
		}
		next = n
		if pi == startPool && next == startAddr {
			return netip.Addr{}, pool{}, fmt.Errorf("no free address in range set %d (%s...): %w", i, set[0].prefix, cni.ErrTryAgain)
		}
	}
}

// free counts whether every range set still has a free address (for STATUS).
func (c *Config) exhausted(s *store) (int, bool) {
	for i, set := range c.Sets {
		free := false
		for _, p := range set {
			for a := p.start; a.IsValid() && p.contains(a); a = a.Next() {
				if c.usable(p, a) && !s.taken(a) {
					free = true
					break
				}
			}
			if free {
				break
			}
		}
		if !free {
			return i, true
		}
	}
	return 0, false
}
