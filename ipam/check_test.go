package ipam

// The harness's checks of what the routers hold and of their rings.

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/weftnet/weft/mesh"
)

// held returns every address held on every live router, per pool:
// address -> "router/ident" list.
func (n *testNet) held() map[netip.Addr][]string {
	out := map[netip.Addr][]string{}
	for _, nd := range n.live() {
		nd.a.mu.Lock()
		for _, p := range nd.a.pools {
			for v, id := range p.idents {
				out[u2a(v)] = append(out[u2a(v)], fmt.Sprintf("%v/%s", uint64(nd.name), id))
			}
		}
		nd.a.mu.Unlock()
	}
	return out
}

// checkNoDuplicates fails when an address is held twice.
func (n *testNet) checkNoDuplicates(tb testing.TB) {
	tb.Helper()
	for a, hs := range n.held() {
		if len(hs) > 1 {
			tb.Fatalf("address %s held by %v", a, hs)
		}
	}
}

// ringOf returns a copy of a router's ring of pool.
func (nd *testNode) ringOf(pool netip.Prefix) ring {
	nd.a.mu.Lock()
	defer nd.a.mu.Unlock()
	p := nd.a.pools[pool]
	if p == nil {
		return ring{}
	}
	return p.ring.clone()
}

// checkConverged checks, once the network has settled with no partition,
// that every live router has the same ring of pool, that it tiles the
// pool from its start, that no range is owned by a router that left, that
// each owner's free counts are right, and that every address held is in
// a range its holder owns, or reported as a conflict.
func (n *testNet) checkConverged(tb testing.TB, pool netip.Prefix) {
	tb.Helper()
	nodes := n.live()
	ref := nodes[0].ringOf(pool)
	if !ref.seeded() {
		tb.Fatalf("router %v has no ring of %s", nodes[0].name, pool)
	}
	for _, nd := range nodes[1:] {
		r := nd.ringOf(pool)
		if r.seed != ref.seed || !slices.Equal(r.ents, ref.ents) {
			tb.Fatalf("rings differ:\n%v: %v\n%v: %v", nodes[0].name, ringString(ref), nd.name, ringString(r))
		}
	}
	checkTiling(tb, ref)
	byName := map[mesh.PeerName]*testNode{}
	for _, nd := range nodes {
		byName[nd.name] = nd
	}
	n.mu.Lock()
	left := maps.Clone(n.left)
	n.mu.Unlock()
	for i, e := range ref.ents {
		if left[e.owner] {
			tb.Fatalf("range %s is owned by %v, which handed over and left", ref.span(i), e.owner)
		}
		nd := byName[e.owner]
		if nd == nil {
			continue // killed without a hand-over: its range waits for rmpeer
		}
		nd.a.mu.Lock()
		f := nd.a.pools[pool].freeIn(ref.span(i))
		nd.a.mu.Unlock()
		if f != e.free {
			tb.Fatalf("range %s of %v: the ring says %d free, the owner has %d", ref.span(i), e.owner, e.free, f)
		}
	}
	for _, nd := range nodes {
		nd.a.mu.Lock()
		for v, id := range nd.a.pools[pool].idents {
			if _, known := nd.a.pools[pool].conflicts[v]; known {
				continue // held on another router too, and reported
			}
			if o := ref.owner(v); o != nd.name {
				nd.a.mu.Unlock()
				tb.Fatalf("%s held by %s on %v is in a range of %v", u2a(v), id, nd.name, o)
			}
		}
		nd.a.mu.Unlock()
	}
}

// checkTiling checks that the tokens are sorted, unique, start at the
// pool's start, and have owners, and that no free count exceeds its range.
func checkTiling(tb testing.TB, r ring) {
	tb.Helper()
	checkTokens(tb, r)
	for i, e := range r.ents {
		if e.free > r.span(i).size() {
			tb.Fatalf("token %d has %d free in %d addresses: %v", i, e.free, r.span(i).size(), ringString(r))
		}
	}
}

// checkTokens checks that the tokens are sorted, unique, start at the
// pool's start, and have owners.
func checkTokens(tb testing.TB, r ring) {
	tb.Helper()
	if len(r.ents) == 0 || r.ents[0].start != r.pool.lo {
		tb.Fatalf("ring does not start at the pool's start: %v", ringString(r))
	}
	for i, e := range r.ents {
		if i > 0 && e.start <= r.ents[i-1].start {
			tb.Fatalf("tokens out of order at %d: %v", i, ringString(r))
		}
		if !r.pool.contains(e.start) || e.owner == mesh.UnknownPeerName {
			tb.Fatalf("bad token %d: %v", i, ringString(r))
		}
	}
}

func ringString(r ring) string {
	s := fmt.Sprintf("seed %d/%v:", r.seed.At, r.seed.By)
	for i, e := range r.ents {
		s += fmt.Sprintf(" [%s %v v%d f%d]", r.span(i), uint64(e.owner), e.version, e.free)
	}
	return s
}
