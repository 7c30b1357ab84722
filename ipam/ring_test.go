package ipam

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/weftnet/weft/mesh"
)

// randEntries returns up to n entries of a small pool, from a few
// owners, versions and free counts, so that many collide on a token.
func randEntries(rnd *rand.Rand, pool span, n int) []entry {
	out := make([]entry, rnd.IntN(n+1))
	for i := range out {
		out[i] = entry{
			start:   pool.lo + uint64(rnd.IntN(8))*pool.size()/8,
			owner:   mesh.PeerName(1 + rnd.IntN(3)),
			version: uint32(rnd.IntN(4)),
			free:    uint64(rnd.IntN(4)),
		}
	}
	return out
}

func mergedRing(pool span, sets ...[]entry) ring {
	r := ring{pool: pool}
	for _, s := range sets {
		r.merge(s)
	}
	return r
}

func TestRingMergeLaws(t *testing.T) {
	pool := spanOf(netip.MustParsePrefix("10.0.0.0/24"))
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		a, b, c := randEntries(rnd, pool, 6), randEntries(rnd, pool, 6), randEntries(rnd, pool, 6)
		ab := mergedRing(pool, a, b)
		if ba := mergedRing(pool, b, a); !slices.Equal(ab.ents, ba.ents) {
			t.Fatalf("case %d: not commutative:\n%v\n%v", i, ringString(ab), ringString(ba))
		}
		// Associative: (a+b)+c == a+(b+c), merging whole rings.
		bc := mergedRing(pool, b, c)
		left := mergedRing(pool, ab.ents, c)
		right := mergedRing(pool, a, bc.ents)
		if !slices.Equal(left.ents, right.ents) {
			t.Fatalf("case %d: not associative:\n%v\n%v", i, ringString(left), ringString(right))
		}
		// Idempotent: merging what is already there changes nothing.
		again := ab.clone()
		if d := again.merge(a); len(d) != 0 || !slices.Equal(again.ents, ab.ents) {
			t.Fatalf("case %d: merging a again changed %v", i, d)
		}
		if d := again.merge(ab.ents); len(d) != 0 {
			t.Fatalf("case %d: merging itself changed %v", i, d)
		}
		// The delta carries everything: old + delta == old + input.
		old := mergedRing(pool, a)
		next := old.clone()
		d := next.merge(b)
		viaDelta := old.clone()
		viaDelta.merge(d)
		if !slices.Equal(viaDelta.ents, next.ents) {
			t.Fatalf("case %d: delta incomplete", i)
		}
		checkSorted(t, left)
	}
}

func checkSorted(t *testing.T, r ring) {
	t.Helper()
	for i := 1; i < len(r.ents); i++ {
		if r.ents[i].start <= r.ents[i-1].start {
			t.Fatalf("tokens out of order: %v", ringString(r))
		}
	}
}

func TestWins(t *testing.T) {
	for _, c := range []struct {
		name string
		a, b entry
		want bool
	}{
		{"higher version", entry{owner: 2, version: 3}, entry{owner: 1, version: 2}, true},
		{"lower version", entry{owner: 1, version: 2}, entry{owner: 2, version: 3}, false},
		{"equal version, lower owner", entry{owner: 1, version: 3}, entry{owner: 2, version: 3}, true},
		{"equal version, higher owner", entry{owner: 2, version: 3}, entry{owner: 1, version: 3}, false},
		{"same owner, lower free", entry{owner: 1, version: 3, free: 1}, entry{owner: 1, version: 3, free: 2}, true},
		{"identical", entry{owner: 1, version: 3, free: 1}, entry{owner: 1, version: 3, free: 1}, false},
	} {
		if got := wins(c.a, c.b); got != c.want {
			t.Errorf("%s: wins = %v", c.name, got)
		}
	}
}

// TestRingAssign gives random spans to random owners and checks that the
// tokens still tile the pool, that exactly the span changed hands, and
// that the changed entries it returns bring an old copy of the ring to
// the new one.
func TestRingAssign(t *testing.T) {
	pool := spanOf(netip.MustParsePrefix("10.0.0.0/26"))
	rnd := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		r := ring{pool: pool}
		r.seedAll(1, 1)
		owners := make([]mesh.PeerName, pool.size()) // the model
		for i := range owners {
			owners[i] = 1
		}
		for range 20 {
			lo := pool.lo + uint64(rnd.IntN(int(pool.size())))
			hi := lo + 1 + uint64(rnd.IntN(int(pool.hi-lo)))
			s := span{lo, hi}
			owner := mesh.PeerName(1 + rnd.IntN(4))
			old := r.clone()
			changed := r.assign(s, owner, func(x span) uint64 { return x.size() })
			for a := s.lo; a < s.hi; a++ {
				owners[a-pool.lo] = owner
			}
			checkTokens(t, r) // free counts of the rest are the pool's job (refresh)
			for a := pool.lo; a < pool.hi; a++ {
				if got := r.owner(a); got != owners[a-pool.lo] {
					t.Fatalf("round %d: after assigning %s to %v, %s is owned by %v, want %v\n%v", round, s, owner, u2a(a), got, owners[a-pool.lo], ringString(r))
				}
			}
			for i := range r.ents {
				if sp := r.span(i); sp.within(s) && r.ents[i].free != sp.size() {
					t.Fatalf("round %d: free of %s is %d", round, sp, r.ents[i].free)
				}
			}
			old.merge(changed)
			if !slices.Equal(old.ents, r.ents) {
				t.Fatalf("round %d: the changed entries do not carry the assignment of %s:\nold+changed %v\nnew         %v", round, s, ringString(old), ringString(r))
			}
		}
	}
}

func TestRingAt(t *testing.T) {
	pool := spanOf(netip.MustParsePrefix("10.0.0.0/24"))
	r := ring{pool: pool}
	if r.at(pool.lo) != -1 || r.owner(pool.lo) != mesh.UnknownPeerName || r.seeded() {
		t.Fatal("an empty ring owns something")
	}
	r.seedAll(7, 1)
	r.assign(span{pool.lo + 16, pool.lo + 32}, 8, func(s span) uint64 { return s.size() })
	for _, c := range []struct {
		a    uint64
		want int
	}{
		{pool.lo, 0}, {pool.lo + 15, 0}, {pool.lo + 16, 1}, {pool.lo + 31, 1}, {pool.lo + 32, 2}, {pool.hi - 1, 2},
		{pool.hi, -1}, {pool.lo - 1, -1},
	} {
		if got := r.at(c.a); got != c.want {
			t.Errorf("at(%s) = %d, want %d", u2a(c.a), got, c.want)
		}
	}
	if got := r.owned(8); !slices.Equal(got, []int{1}) {
		t.Errorf("owned(8) = %v", got)
	}
}

func TestSeedOlder(t *testing.T) {
	a, b, c := Seed{At: 1, By: 9}, Seed{At: 2, By: 1}, Seed{At: 1, By: 10}
	if !a.olderThan(b) || b.olderThan(a) || !a.olderThan(c) || c.olderThan(a) || a.olderThan(a) {
		t.Fatal("olderThan is not an order by time, then name")
	}
	if !(Seed{}).IsZero() || a.IsZero() {
		t.Fatal("IsZero")
	}
}
