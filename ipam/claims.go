package ipam

// Claims of single addresses, and what follows a merge of separately
// seeded rings: re-claims, the quarantine and its end (ClaimsDone).

import (
	"slices"

	"github.com/weftnet/weft/mesh"
)

// reclaimLocked asks the owners of addresses held here, in ranges no
// longer ours, to give them to us; it runs only when a merge (or a
// restart) may have moved such an address out of our ranges, until none
// is left. Once every such claim is answered after we adopted an older
// ring, it tells the other routers so (ClaimsDone).
func (a *Allocator) reclaimLocked(p *pool) {
	if !p.ring.seeded() || !p.reclaim && !p.mustSayDone {
		return
	}
	now := a.cfg.Now()
	reach := a.reachableSet()
	answered, foreign := true, false
	for v, ident := range p.idents {
		owner := p.ring.owner(v)
		if owner == a.cfg.Self {
			delete(p.conflicts, v) // granted, or given when the other holder let go
			delete(p.claimed, v)
			continue
		}
		foreign = true
		wait := a.cfg.RetryInterval * 5
		if _, ok := p.conflicts[v]; ok {
			wait = a.cfg.Quarantine
		} else {
			answered = false
		}
		if !reach[owner] {
			continue
		}
		if t, ok := p.claimed[v]; ok && now.Sub(t) < wait {
			continue
		}
		p.claimed[v] = now
		a.unicastLocked(owner, request{kind: kindReclaim, pool: p.prefix, addr: u2a(v), ident: ident}.encode())
	}
	p.reclaim = foreign
	if p.mustSayDone && answered {
		p.mustSayDone = false
		a.claimsDoneLocked(p)
	}
}

// claimsDoneLocked tells every reachable router of the ring we adopted
// that each of our claims has been answered (granted, or denied and
// recorded as a conflict), so that each lifts the quarantine of what we
// owned in our old ring.
func (a *Allocator) claimsDoneLocked(p *pool) {
	for _, q := range a.cfg.Peers.ReachablePeers() {
		if q != a.cfg.Self {
			a.unicastLocked(q, request{kind: kindClaimsDone, pool: p.prefix}.encode())
		}
	}
}

// quarantineLocked keeps the in-use spans of a younger ring out of
// allocation for a while, so that nothing its routers hold is handed out
// here before they claim it. It reports whether a span was new.
func (a *Allocator) quarantineLocked(p *pool, pu poolUpdate, whole bool) bool {
	now := a.cfg.Now()
	until := now.Add(a.cfg.Quarantine)
	p.quar = slices.DeleteFunc(p.quar, func(q quarantined) bool { return !now.Before(q.until) })
	fresh := false
	for i, e := range pu.ents {
		hi := p.span.hi
		if i+1 < len(pu.ents) {
			hi = pu.ents[i+1].start
		}
		s := span{e.start, hi}
		if e.free >= s.size() {
			continue
		}
		j := slices.IndexFunc(p.quar, func(q quarantined) bool { return q.span == s && q.seed == pu.seed })
		if j >= 0 {
			continue // known: its holders are claiming
		}
		p.quar = append(p.quar, quarantined{span: s, until: until, seed: pu.seed, owner: e.owner})
		fresh = true
	}
	if fresh {
		a.log.Warn("met a separately seeded IP allocation ring; ours is older and stays, its routers re-claim their addresses",
			"pool", p.prefix, "theirs_seeded_by", pu.seed.By, "ours_seeded_by", p.ring.seed.By, "whole", whole)
		a.wake()
	}
	return fresh
}

// grantLocked gives src the one address it claims, if it is ours and free.
func (a *Allocator) grantLocked(src mesh.PeerName, p *pool, r request) {
	v := a2u(r.addr)
	if p == nil || !p.ring.seeded() || p.ring.owner(v) != a.cfg.Self {
		a.unicastLocked(src, request{kind: kindNotOwner, pool: r.pool, addr: r.addr}.encode())
		return
	}
	if holder, ok := p.idents[v]; ok {
		if r.kind == kindReclaim {
			p.wanted[v] = src // it holds the address too: it gets it when freed here
		}
		a.unicastLocked(src, request{kind: kindClaimDenied, pool: r.pool, addr: r.addr, ident: holder}.encode())
		return
	}
	p.note(p.ring.assign(span{v, v + 1}, src, p.usableIn))
	p.refresh(a.cfg.Self, p.span)
	a.unicastLocked(src, encodeUpdate(p.wholeRing()))
	a.flushLocked(p, nil, nil)
}
