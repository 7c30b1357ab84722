package ipam

import (
	"slices"

	"github.com/weftnet/weft/mesh"
)

// Seed identifies one seeding of a pool's ring: when and by whom. Two
// rings of the same pool with different seeds were started apart; the
// older one wins when they meet.
type Seed struct {
	// At is the seeder's clock at seeding, in nanoseconds since 1970.
	At int64
	// By is the peer that seeded the ring.
	By mesh.PeerName
}

// IsZero reports whether the seed is unset (no ring yet).
func (s Seed) IsZero() bool { return s.By == mesh.UnknownPeerName }

// olderThan reports whether s wins over o: earlier, then lower seeder.
func (s Seed) olderThan(o Seed) bool {
	if s.At != o.At {
		return s.At < o.At
	}
	return s.By < o.By
}

// entry is one token of a ring: the range from start to the next token.
type entry struct {
	start   uint64
	owner   mesh.PeerName
	version uint32
	free    uint64 // the owner's count of free addresses in the range
}

// wins reports whether a replaces b at the same token: the higher
// version, then the lower owner (so that two takeovers of a dead peer's
// range converge to one owner), then the lower free count.
func wins(a, b entry) bool {
	if a.version != b.version {
		return a.version > b.version
	}
	if a.owner != b.owner {
		return a.owner < b.owner
	}
	return a.free < b.free
}

// ring is the ownership of one pool: tokens sorted by start, the first at
// the pool's start once the ring is seeded. It is a value merged token by
// token; it is not safe for concurrent use.
type ring struct {
	pool span
	seed Seed
	ents []entry
}

// seeded reports whether the ring has been seeded.
func (r *ring) seeded() bool {
	return !r.seed.IsZero() && len(r.ents) > 0 && r.ents[0].start == r.pool.lo
}

// find returns the index of the token at start and whether it exists (else
// where it would be inserted).
func (r *ring) find(start uint64) (int, bool) {
	return slices.BinarySearchFunc(r.ents, start, func(e entry, s uint64) int {
		switch {
		case e.start < s:
			return -1
		case e.start > s:
			return 1
		}
		return 0
	})
}

// at returns the index of the entry whose range contains address a; -1
// when the ring is not seeded or a is outside the pool.
func (r *ring) at(a uint64) int {
	if !r.pool.contains(a) || len(r.ents) == 0 || r.ents[0].start > a {
		return -1
	}
	i, ok := r.find(a)
	if !ok {
		i--
	}
	return i
}

// span returns the range of entry i.
func (r *ring) span(i int) span {
	hi := r.pool.hi
	if i+1 < len(r.ents) {
		hi = r.ents[i+1].start
	}
	return span{r.ents[i].start, hi}
}

// owner returns the owner of address a (UnknownPeerName if none).
func (r *ring) owner(a uint64) mesh.PeerName {
	if i := r.at(a); i >= 0 {
		return r.ents[i].owner
	}
	return mesh.UnknownPeerName
}

// seedAll seeds the ring with the whole pool owned by self.
func (r *ring) seedAll(self mesh.PeerName, at int64) []entry {
	r.seed = Seed{At: at, By: self}
	r.ents = []entry{{start: r.pool.lo, owner: self, version: 1, free: r.pool.size()}}
	return slices.Clone(r.ents)
}

// merge folds entries of the same seed into the ring and returns those
// that changed it. Entries outside the pool are ignored.
func (r *ring) merge(in []entry) []entry {
	var delta []entry
	for _, e := range in {
		if !r.pool.contains(e.start) {
			continue
		}
		i, ok := r.find(e.start)
		switch {
		case !ok:
			r.ents = slices.Insert(r.ents, i, e)
		case wins(e, r.ents[i]):
			r.ents[i] = e
		default:
			continue
		}
		delta = append(delta, e)
	}
	return delta
}

// split makes sure a token starts at a (inside the pool), copying the
// owner of the range it falls in, and returns its index.
func (r *ring) split(a uint64) int {
	i, ok := r.find(a)
	if ok {
		return i
	}
	prev := r.ents[i-1]
	r.ents = slices.Insert(r.ents, i, entry{start: a, owner: prev.owner, version: prev.version + 1})
	return i
}

// assign gives the span s (tokens made at its ends as needed) to owner,
// setting the free count of each of its entries with free(span), and
// returns the entries it changed (including the split token at s.hi, whose
// version is bumped so that its new start is seen).
func (r *ring) assign(s span, owner mesh.PeerName, free func(span) uint64) []entry {
	var changed []entry
	if s.hi < r.pool.hi {
		_, existed := r.find(s.hi)
		j := r.split(s.hi)
		if !existed {
			changed = append(changed, r.ents[j])
		}
	}
	i := r.split(s.lo)
	for ; i < len(r.ents) && r.ents[i].start < s.hi; i++ {
		e := &r.ents[i]
		e.owner = owner
		e.version++
		e.free = free(r.span(i))
		changed = append(changed, *e)
	}
	return changed
}

// owned returns the indexes of the entries owned by p, in order.
func (r *ring) owned(p mesh.PeerName) []int {
	var out []int
	for i, e := range r.ents {
		if e.owner == p {
			out = append(out, i)
		}
	}
	return out
}

// clone returns a deep copy.
func (r *ring) clone() ring {
	return ring{pool: r.pool, seed: r.seed, ents: slices.Clone(r.ents)}
}
