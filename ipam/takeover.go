package ipam

// Ranges changing hands for good: rmpeer (TakeOver) and reset (HandOver).

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/weftnet/weft/mesh"
)

// TakeOver gives this router every range that peer owns, for `weft
// rmpeer` of a peer that is gone for good, and returns how many
// addresses that is. The ranges are not allocated from for
// Config.TakeoverSettle, so two routers taking over the same peer (both
// reachable) meet before either allocates there and converge on the lower
// name. Routers cut off from each other converge on the one whose entry
// has the higher version (each allocation or release bumps it). What the other allocated there is
// claimed back from it; an address both handed out is reported as a
// conflict by the router that lost the range. Ranges of the peer that
// this router learns of later (it was cut off when the peer got them) are
// taken over as they arrive, until this router restarts or the peer is
// reachable again.
func (a *Allocator) TakeOver(peer mesh.PeerName) (uint64, error) {
	if peer == a.cfg.Self {
		return 0, errors.New("rmpeer: that is this router; run it on another host")
	}
	a.mu.Lock()
	var n uint64
	for _, p := range a.pools {
		if m := p.takeOver(a.cfg.Self, peer, a.cfg.Now().Add(a.cfg.TakeoverSettle)); m > 0 {
			n += m
			a.flushLocked(p, nil, nil)
		}
	}
	if n > 0 {
		// Ranges of it that we learn of later (from a partition that did
		// not hear of this) are taken over as they arrive.
		a.removed[peer] = true
	}
	a.mu.Unlock()
	a.send()
	if n == 0 {
		return 0, fmt.Errorf("rmpeer %s: %w: it owns no addresses ('weft status ipam' lists the peers that do)", peer, ErrUnknownPeer)
	}
	a.log.Warn("took over the address ranges of a removed peer", "peer", peer, "addresses", n)
	return n, nil
}

// takeOver gives self every range of p that peer owns and returns how
// many addresses that is. The ranges are kept out of allocation here until
// settled, so that a takeover of the same peer by another router meets
// ours before either allocates there.
func (p *pool) takeOver(self, peer mesh.PeerName, settled time.Time) uint64 {
	var n uint64
	for i := range p.ring.ents {
		e := &p.ring.ents[i]
		if e.owner != peer {
			continue
		}
		s := p.ring.span(i)
		e.owner, e.version, e.free = self, e.version+1, p.freeIn(s)
		p.delta[e.start] = *e
		p.quar = append(p.quar, quarantined{span: s, until: settled, owner: self})
		n += s.size()
	}
	return n
}

// HandOver gives every range this router owns to reachable peers before it
// leaves for good (`weft reset`): every address held here counts as free.
// It returns ErrNoHeir when a pool had nobody to take it.
func (a *Allocator) HandOver() error {
	a.mu.Lock()
	var errs []error
	for _, p := range a.pools {
		for v := range p.idents {
			p.unhold(v)
		}
		if _, err := a.handOverLocked(p); err != nil {
			errs = append(errs, err)
		}
	}
	a.mu.Unlock()
	a.send()
	return errors.Join(errs...)
}

// handOverLocked gives p's ranges owned here to an heir: a reachable peer
// that owns a range in p if there is one, else the lowest reachable peer.
func (a *Allocator) handOverLocked(p *pool) (mesh.PeerName, error) {
	mine := p.ring.owned(a.cfg.Self)
	if len(mine) == 0 {
		return mesh.UnknownPeerName, nil
	}
	var heir mesh.PeerName
	reach := a.cfg.Peers.ReachablePeers()
	for _, q := range reach {
		if q == a.cfg.Self {
			continue
		}
		if heir == mesh.UnknownPeerName {
			heir = q
		}
		if slices.ContainsFunc(p.ring.ents, func(e entry) bool { return e.owner == q }) {
			heir = q
			break
		}
	}
	if heir == mesh.UnknownPeerName {
		return heir, fmt.Errorf("pool %s: %w", p.prefix, ErrNoHeir)
	}
	for _, i := range mine {
		e := &p.ring.ents[i]
		e.owner, e.version, e.free = heir, e.version+1, p.freeIn(p.ring.span(i))
		p.delta[e.start] = *e
	}
	a.flushLocked(p, nil, nil)
	a.log.Info("handed the address ranges of this router to a peer", "pool", p.prefix, "heir", heir)
	return heir, nil
}

// takeRemovedLocked takes over the ranges of peers removed here (rmpeer)
// that a merge brought in (d; nil: the whole ring): ranges this router
// had not heard of when it ran rmpeer. A removed peer that is reachable
// again is not removed any more.
func (a *Allocator) takeRemovedLocked(p *pool, d []entry) {
	if len(a.removed) == 0 {
		return
	}
	reach := a.reachableSet()
	for q := range a.removed {
		if reach[q] {
			delete(a.removed, q)
			a.log.Warn("a peer removed with rmpeer is reachable again; its ranges are no longer taken over", "peer", q)
		}
	}
	for q := range a.removed {
		if d != nil && !slices.ContainsFunc(d, func(e entry) bool { return e.owner == q }) {
			continue
		}
		if n := p.takeOver(a.cfg.Self, q, a.cfg.Now().Add(a.cfg.TakeoverSettle)); n > 0 {
			a.log.Warn("took over more address ranges of a removed peer", "pool", p.prefix, "peer", q, "addresses", n)
		}
	}
}
