package ipam

// The bookkeeping of one pool: addresses held here, free counts of our
// entries, and where a free address is.

import (
	"slices"
	"time"

	"github.com/weftnet/weft/mesh"
)

// hold marks v as held by ident (bookkeeping only).
func (p *pool) hold(v uint64, ident string) {
	if p.held == nil {
		p.held = newBitset(p.span)
	}
	p.held.set(v)
	if old, ok := p.idents[v]; ok {
		p.byIdent[old] = slices.DeleteFunc(p.byIdent[old], func(x uint64) bool { return x == v })
	}
	p.idents[v] = ident
	p.byIdent[ident] = append(p.byIdent[ident], v)
}

// unhold forgets v.
func (p *pool) unhold(v uint64) {
	if p.held != nil {
		p.held.clear(v)
	}
	if id, ok := p.idents[v]; ok {
		rest := slices.DeleteFunc(p.byIdent[id], func(x uint64) bool { return x == v })
		if len(rest) == 0 {
			delete(p.byIdent, id)
		} else {
			p.byIdent[id] = rest
		}
	}
	delete(p.idents, v)
	delete(p.conflicts, v)
	delete(p.claimed, v)
}

// freeIn counts the addresses of s that could be handed out here: not
// held, and not the pool's own network or broadcast address.
func (p *pool) freeIn(s span) uint64 {
	n := p.usableIn(s)
	if p.held != nil {
		n -= p.held.count(s)
		for _, r := range [2]uint64{p.span.lo, p.span.hi - 1} {
			if s.contains(r) && p.held.get(r) {
				n++ // counted as held, not as reserved
			}
		}
	}
	return n
}

// usableIn counts the addresses of s other than the pool's network and
// broadcast addresses, which are never handed out.
func (p *pool) usableIn(s span) uint64 {
	n := s.size()
	for _, r := range [2]uint64{p.span.lo, p.span.hi - 1} {
		if s.contains(r) {
			n--
		}
	}
	return n
}

// refresh recomputes the free count of our entries that overlap s and
// records those that changed for broadcast.
func (p *pool) refresh(self mesh.PeerName, s span) {
	i := max(p.ring.at(s.lo), 0)
	for ; i < len(p.ring.ents) && p.ring.ents[i].start < s.hi; i++ {
		e := &p.ring.ents[i]
		if e.owner != self {
			continue
		}
		if f := p.freeIn(p.ring.span(i)); f != e.free {
			e.free = f
			e.version++
			p.delta[e.start] = *e
		}
	}
}

// count follows one address of ours taken or freed here: the free count
// of its entry changes by one (unless it is the pool's network or
// broadcast address, never counted as free), without recounting the
// range, which for a large one would cost more than the allocation.
func (p *pool) count(self mesh.PeerName, v uint64, taken bool) {
	i := p.ring.at(v)
	if i < 0 || p.ring.ents[i].owner != self || v == p.span.lo || v == p.span.hi-1 {
		return
	}
	e := &p.ring.ents[i]
	switch {
	case taken && e.free > 0:
		e.free--
	case !taken && e.free < p.ring.span(i).size():
		e.free++
	default:
		return
	}
	e.version++
	p.delta[e.start] = *e
}

// wholeRing returns the whole ring as an update of one pool. The entries
// are shared with the ring: encode them before the lock is released.
func (p *pool) wholeRing() []poolUpdate {
	return []poolUpdate{{pool: p.prefix, seed: p.ring.seed, ents: p.ring.ents, whole: true}}
}

// note records entries for broadcast.
func (p *pool) note(ents []entry) {
	for _, e := range ents {
		p.delta[e.start] = e
	}
}

// quarantinedAt returns the end of the quarantine span containing v, or 0.
func (p *pool) quarantinedAt(v uint64, now time.Time) uint64 {
	for _, q := range p.quar {
		if q.span.contains(v) && now.Before(q.until) {
			return q.span.hi
		}
	}
	return 0
}

// findFree returns the lowest address of s owned by self, not held and not
// quarantined.
func (p *pool) findFree(self mesh.PeerName, s span, now time.Time) (uint64, bool) {
	if !p.ring.seeded() || s.empty() {
		return 0, false
	}
	for i := max(p.ring.at(s.lo), 0); i < len(p.ring.ents) && p.ring.ents[i].start < s.hi; i++ {
		if p.ring.ents[i].owner != self {
			continue
		}
		cand := p.ring.span(i).intersect(s)
		for !cand.empty() {
			var v uint64
			if p.held == nil {
				v = cand.lo
			} else if f, ok := p.held.firstClear(cand); ok {
				v = f
			} else {
				break
			}
			if end := p.quarantinedAt(v, now); end != 0 {
				cand.lo = end
				continue
			}
			return v, true
		}
	}
	return 0, false
}

// settling reports whether part of s is a range this router took over
// (rmpeer) that is still kept out of allocation.
func (p *pool) settling(self mesh.PeerName, s span, now time.Time) bool {
	for _, q := range p.quar {
		if q.owner == self && q.span.overlaps(s) && now.Before(q.until) {
			return true
		}
	}
	return false
}
