package ipam

import (
	"net/netip"
	"slices"
	"time"

	"github.com/weftnet/weft/mesh"
)

// OnGossipUnicast implements mesh.Gossiper: requests and answers between
// two routers, and ring updates sent straight to a borrower.
func (a *Allocator) OnGossipUnicast(src mesh.PeerName, msg []byte) error {
	u, r, err := decodeMessage(msg)
	if err != nil {
		return err
	}
	a.mu.Lock()
	if u != nil {
		// An answer from src (space lent, a ring asked for): the next
		// request to it need not wait for the retry interval.
		for k := range a.asked {
			if k.peer == src {
				delete(a.asked, k)
			}
		}
		a.mergeLocked(src, u)
	} else {
		a.handleLocked(src, r)
	}
	a.mu.Unlock()
	a.send()
	return nil
}

// OnGossipBroadcast implements mesh.Gossiper.
func (a *Allocator) OnGossipBroadcast(src mesh.PeerName, msg []byte) (mesh.GossipData, error) {
	return a.onGossip(src, msg)
}

// OnGossip implements mesh.Gossiper.
func (a *Allocator) OnGossip(msg []byte) (mesh.GossipData, error) {
	return a.onGossip(mesh.UnknownPeerName, msg)
}

func (a *Allocator) onGossip(src mesh.PeerName, msg []byte) (mesh.GossipData, error) {
	u, _, err := decodeMessage(msg)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, nil // a request sent as gossip: ignored
	}
	a.mu.Lock()
	delta := a.mergeLocked(src, u)
	a.mu.Unlock()
	a.send()
	if delta == nil {
		return nil, nil // never a typed nil inside the interface
	}
	return delta, nil
}

// Gossip implements mesh.Gossiper: the whole ring of every seeded pool.
func (a *Allocator) Gossip() mesh.GossipData {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := &update{}
	for _, p := range a.pools {
		if p.ring.seeded() {
			u.pools = append(u.pools, poolUpdate{pool: p.prefix, seed: p.ring.seed, ents: slices.Clone(p.ring.ents), whole: true})
		}
	}
	if len(u.pools) == 0 {
		return nil
	}
	return u
}

// mergeLocked folds an update into our rings and returns what was new.
func (a *Allocator) mergeLocked(src mesh.PeerName, u *update) *update {
	delta := &update{}
	for _, pu := range u.pools {
		p := a.pools[pu.pool]
		if p == nil {
			if err := a.canAddPool(pu.pool); err != nil {
				a.log.Debug("ignoring IPAM pool", "pool", pu.pool, "from", src, "err", err)
				continue
			}
			p = a.newPool(pu.pool)
		}
		switch {
		case !p.ring.seeded() || pu.seed != p.ring.seed && pu.seed.olderThan(p.ring.seed):
			if !pu.whole {
				a.requestRingLocked(src, p, pu.seed.By)
				continue
			}
			if p.ring.seeded() {
				a.log.Warn("this pool was seeded apart from the rest of the mesh; the older ring wins and this router re-claims its addresses from their new owners",
					"pool", p.prefix, "ours_seeded_by", p.ring.seed.By, "ours_seeded_at", time.Unix(0, p.ring.seed.At).UTC(),
					"winner_seeded_by", pu.seed.By, "winner_seeded_at", time.Unix(0, pu.seed.At).UTC(), "held_here", len(p.idents))
			}
			lost := p.ring.seeded()
			p.ring = ring{pool: p.span, seed: pu.seed}
			p.ring.merge(pu.ents)
			clear(p.delta)
			clear(p.claimed)
			p.mustSayDone = p.mustSayDone || lost
			p.reclaim = len(p.idents) > 0
			delta.pools = append(delta.pools, pu)
			a.ownershipChangedLocked(p, true, nil)
		case pu.seed == p.ring.seed:
			// Persist when our ranges change, whether we gain or lose them;
			// re-claim what we hold when we may have lost some.
			mine, lost := false, false
			for _, e := range pu.ents {
				old := p.ring.owner(e.start)
				mine = mine || e.owner == a.cfg.Self || old == a.cfg.Self
				lost = lost || old == a.cfg.Self && e.owner != a.cfg.Self
			}
			d := p.ring.merge(pu.ents)
			if len(d) == 0 {
				continue
			}
			delta.pools = append(delta.pools, poolUpdate{pool: pu.pool, seed: pu.seed, ents: d})
			p.reclaim = p.reclaim || lost && len(p.idents) > 0
			a.ownershipChangedLocked(p, mine, d)
		default: // a younger ring of the same pool: it moves to ours
			if a.quarantineLocked(p, pu, pu.whole) {
				delta.pools = append(delta.pools, pu)
				if src != mesh.UnknownPeerName {
					a.unicastLocked(src, encodeUpdate(p.wholeRing()))
				}
			}
		}
	}
	if len(delta.pools) == 0 {
		return nil
	}
	return delta
}

// requestRingLocked asks a peer for its whole ring of p (when only a part
// arrived, or when it said it does not own what our ring says it does),
// at most once per retry interval. With no peer named, the ring's seeder
// is asked.
func (a *Allocator) requestRingLocked(dst mesh.PeerName, p *pool, seeder mesh.PeerName) {
	if dst == mesh.UnknownPeerName {
		dst = seeder
	}
	if dst == mesh.UnknownPeerName || dst == a.cfg.Self {
		return
	}
	k := askKey{peer: dst, subnet: p.prefix, kind: kindRingRequest}
	now := a.cfg.Now()
	if t, ok := a.asked[k]; ok && now.Sub(t) < a.cfg.RetryInterval {
		return
	}
	a.asked[k] = now
	a.unicastLocked(dst, request{kind: kindRingRequest, pool: p.prefix}.encode())
}

// ownershipChangedLocked follows a merge that changed d (nil: the whole
// ring): claims granted go to the targets waiting for them, our own
// entries' free counts are made right again (a peer may have sent an
// older count of ours), addresses we hold in ranges we no longer own are
// claimed from their new owners, and the ring is persisted when it
// touched us.
func (a *Allocator) ownershipChangedLocked(p *pool, persist bool, d []entry) {
	a.takeRemovedLocked(p, d)
	var got map[netip.Addr]string
	now := a.cfg.Now()
	for v, ident := range p.pending {
		if _, held := p.idents[v]; !held && p.ring.owner(v) == a.cfg.Self && p.quarantinedAt(v, now) == 0 {
			p.hold(v, ident)
			delete(p.pending, v)
			if got == nil {
				got = map[netip.Addr]string{}
			}
			got[u2a(v)] = ident
		}
	}
	if d == nil {
		p.refresh(a.cfg.Self, p.span)
	} else {
		for _, e := range d {
			if e.owner == a.cfg.Self {
				i, _ := p.ring.find(e.start)
				p.refresh(a.cfg.Self, p.ring.span(i))
			}
		}
		for v := range got {
			p.refresh(a.cfg.Self, span{a2u(v), a2u(v) + 1})
		}
	}
	a.reclaimLocked(p)
	if persist && len(p.delta) == 0 && a.cfg.Persister != nil {
		if err := a.cfg.Persister.Persist(Change{Pool: p.prefix, Ring: encodeUpdate(p.wholeRing())}); err != nil {
			a.log.Warn("persist IPAM state", "pool", p.prefix, "err", err)
		}
	}
	a.flushLocked(p, got, nil)
}

// handleLocked answers a request or records an answer.
func (a *Allocator) handleLocked(src mesh.PeerName, r request) {
	p := a.pools[r.pool]
	switch r.kind {
	case kindSpaceRequest:
		a.donateLocked(src, p, r)
	case kindSpaceDenied:
		a.denied[askKey{src, r.subnet, kindSpaceRequest}] = a.cfg.Now().Add(10 * a.cfg.RetryInterval)
		a.wake()
	case kindClaim, kindReclaim:
		a.grantLocked(src, p, r)
	case kindClaimDenied, kindNotOwner:
		if p == nil {
			return
		}
		v := a2u(r.addr)
		if r.kind == kindNotOwner {
			// Our ring is behind the peer's: ask for it rather than ask the
			// same peer again; the claim is sent again when it arrives.
			a.requestRingLocked(src, p, p.ring.seed.By)
		}
		if ident, held := p.idents[v]; held {
			if r.kind == kindNotOwner {
				delete(p.claimed, v)
				p.reclaim = true
			} else if _, known := p.conflicts[v]; !known {
				p.conflicts[v] = Conflict{Addr: r.addr, Ident: ident, Holder: r.ident, Peer: src}
				a.log.Warn("address conflict: an address held here is held on another host too (the meshes were seeded apart); detach one of them",
					"addr", r.addr, "here", ident, "there", r.ident, "host", a.nick(src))
				a.reclaimLocked(p) // all answered: say so
			}
		} else {
			p.replies[v] = claimReply{denied: r.kind == kindClaimDenied, holder: r.ident, from: src}
		}
		a.wake()
	case kindClaimsDone:
		if p == nil {
			return
		}
		n := len(p.quar)
		p.quar = slices.DeleteFunc(p.quar, func(q quarantined) bool { return q.owner == src })
		if n != len(p.quar) {
			a.log.Info("a router of a separately seeded ring has claimed its addresses; its spans are free to allocate again", "pool", p.prefix, "peer", src)
			a.wake()
		}
	case kindRingRequest:
		if p != nil && p.ring.seeded() {
			a.unicastLocked(src, encodeUpdate(p.wholeRing()))
		}
	}
}

// donateLocked gives src part of our free space in the subnet it asks
// for: at most half of what we have free there (at least one address),
// from our largest free run. It seeds the pool if nobody has yet.
func (a *Allocator) donateLocked(src mesh.PeerName, p *pool, r request) {
	deny := func() {
		a.unicastLocked(src, request{kind: kindSpaceDenied, pool: r.pool, subnet: r.subnet}.encode())
	}
	if p == nil {
		if err := a.canAddPool(r.pool); err != nil {
			deny()
			return
		}
		p = a.newPool(r.pool)
	}
	if !p.ring.seeded() {
		if !a.maySeedLocked(p, src) {
			return // src asks again; by then a ring may have come
		}
		a.seedLocked(p, src)
	}
	now := a.cfg.Now()
	us := usable(spanOf(r.subnet)).intersect(p.span)
	var best span
	var total uint64
	for i := max(p.ring.at(us.lo), 0); i < len(p.ring.ents) && p.ring.ents[i].start < us.hi; i++ {
		if p.ring.ents[i].owner != a.cfg.Self {
			continue
		}
		p.freeRuns(p.ring.span(i).intersect(us), now, func(run span) {
			total += run.size()
			if run.size() > best.size() {
				best = run
			}
		})
	}
	if total == 0 {
		a.flushLocked(p, nil, nil)
		if !p.settling(a.cfg.Self, us, now) {
			deny()
		} // else: ranges we just took over are settling; src asks again
		return
	}
	give := min(max(total/2, 1), best.size())
	// Prefer a block aligned to its own size, from the top of the run.
	g := uint64(1)
	for g*2 <= give {
		g *= 2
	}
	chunk := span{best.hi - give, best.hi}
	if lo := (best.hi - g) &^ (g - 1); lo >= best.lo {
		chunk = span{lo, lo + g}
	}
	p.note(p.ring.assign(chunk, src, p.usableIn))
	p.refresh(a.cfg.Self, p.span)
	a.unicastLocked(src, encodeUpdate(p.wholeRing()))
	a.log.Debug("gave address space to a peer", "pool", p.prefix, "peer", src, "span", chunk.String())
	a.flushLocked(p, nil, nil)
}

// freeRuns calls fn for each maximal run of s not held and not
// quarantined.
func (p *pool) freeRuns(s span, now time.Time, fn func(span)) {
	for !s.empty() {
		lo := s.lo
		if p.held != nil {
			f, ok := p.held.firstClear(s)
			if !ok {
				return
			}
			lo = f
		}
		if end := p.quarantinedAt(lo, now); end != 0 {
			s.lo = end
			continue
		}
		hi := s.hi
		if p.held != nil {
			if f, ok := p.held.firstSet(span{lo, s.hi}); ok {
				hi = f
			}
		}
		for _, q := range p.quar {
			if now.Before(q.until) && q.span.lo > lo && q.span.lo < hi {
				hi = q.span.lo
			}
		}
		fn(span{lo, hi})
		s.lo = hi
	}
}

// Tick does the periodic work: claims not answered are sent again and
// expired quarantines and refusals are dropped. The owner calls it every
// few seconds.
func (a *Allocator) Tick() {
	a.mu.Lock()
	now := a.cfg.Now()
	for _, p := range a.pools {
		n := len(p.quar)
		p.quar = slices.DeleteFunc(p.quar, func(q quarantined) bool { return !now.Before(q.until) })
		if n != len(p.quar) {
			a.wake()
		}
		a.reclaimLocked(p)
		if p.ring.seeded() {
			p.refresh(a.cfg.Self, p.span) // a count of ours a merge made wrong
			if len(p.delta) > 0 {
				a.flushLocked(p, nil, nil)
			}
		}
	}
	for k, t := range a.denied {
		if !now.Before(t) {
			delete(a.denied, k)
		}
	}
	for k, t := range a.asked {
		if now.Sub(t) > time.Minute {
			delete(a.asked, k)
		}
	}
	a.mu.Unlock()
	a.send()
}
