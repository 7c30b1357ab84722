package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/weftnet/weft/mesh"
)

// errWait means an operation sent a request and waits for the answer.
var errWait = errors.New("waiting")

// Range returns the --ipalloc-range and the default subnet.
func (a *Allocator) Range() (rng, defaultSubnet netip.Prefix) {
	return a.cfg.Range, a.cfg.DefaultSubnet
}

// InPools reports whether addr lies in a pool (the range, or a pool that
// was created or heard of).
func (a *Allocator) InPools(addr netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.poolContaining(addr) != nil
}

// Allocate returns an address for ident in subnet (zero: the default
// subnet), with the subnet's prefix length: the one ident already holds
// there, or the lowest free one this router owns, borrowing space from a
// peer (or seeding the pool's ring) when it owns none. It waits for peers
// until ctx ends.
func (a *Allocator) Allocate(ctx context.Context, ident string, subnet netip.Prefix) (netip.Prefix, error) {
	if !subnet.IsValid() {
		subnet = a.cfg.DefaultSubnet
	}
	if err := checkPrefix("subnet", subnet); err != nil {
		return netip.Prefix{}, err
	}
	var res netip.Prefix
	err := a.loop(ctx, func() error {
		p := a.poolOf(subnet)
		if p == nil {
			return fmt.Errorf("subnet %s: %w (the range is %s); give a subnet inside it", subnet, ErrOutsidePools, a.cfg.Range)
		}
		us := usable(spanOf(subnet))
		for _, v := range p.byIdent[ident] {
			if us.contains(v) {
				res = netip.PrefixFrom(u2a(v), subnet.Bits())
				return nil
			}
		}
		now := a.cfg.Now()
		if v, ok := p.findFree(a.cfg.Self, us, now); ok {
			a.takeLocked(p, v, ident)
			res = netip.PrefixFrom(u2a(v), subnet.Bits())
			return nil
		}
		if !p.ring.seeded() {
			if a.seedOrAskLocked(p, subnet) {
				return retry
			}
			return errWait
		}
		return a.borrowLocked(p, subnet, us, now)
	})
	return res, err
}

// retry is a sentinel for loop: try again at once.
var retry = errors.New("retry")

// loop runs step under the lock until it returns nil or a final error; on
// errWait it sends what step queued and waits for a change, a retry tick
// or the end of ctx.
func (a *Allocator) loop(ctx context.Context, step func() error) error {
	waiting := false
	defer func() {
		if waiting {
			a.mu.Lock()
			a.waiting--
			a.mu.Unlock()
		}
	}()
	for {
		a.mu.Lock()
		err := step()
		ch := a.changed
		if err == errWait && !waiting {
			waiting = true
			a.waiting++
		}
		a.mu.Unlock()
		a.send()
		switch err {
		case retry:
			continue
		case errWait:
		default:
			return err
		}
		t := time.NewTimer(a.cfg.RetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return a.waitErr(ctx)
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}

// waitErr explains why a wait ended without an answer.
func (a *Allocator) waitErr(ctx context.Context) error {
	a.mu.Lock()
	seeded := a.pools[a.cfg.Range].ring.seeded()
	alone := len(a.cfg.Peers.ReachablePeers()) <= 1
	joining := a.cfg.Joining != nil && a.cfg.Joining()
	a.mu.Unlock()
	if !seeded && alone && joining {
		return fmt.Errorf("no address range yet: this router was told to join peers and reaches none of them, and it does not start a range of its own that would clash with theirs (%w); check 'weft status connections', or 'weft forget' them to start a mesh of its own", ctx.Err())
	}
	return fmt.Errorf("no answer from the peers that own the address space (%w); check 'weft status ipam' and 'weft status connections'", ctx.Err())
}

// takeLocked gives v to ident here.
func (a *Allocator) takeLocked(p *pool, v uint64, ident string) {
	p.hold(v, ident)
	p.count(a.cfg.Self, v, true)
	a.flushLocked(p, map[netip.Addr]string{u2a(v): ident}, nil)
}

// seedOrAskLocked seeds p's ring when this router is alone or the
// lowest-named one it reaches (and reports true); otherwise it asks that
// router for space, which seeds the ring there.
func (a *Allocator) seedOrAskLocked(p *pool, subnet netip.Prefix) bool {
	lowest := a.cfg.Self
	for _, q := range a.cfg.Peers.ReachablePeers() {
		lowest = min(lowest, q)
	}
	if lowest == a.cfg.Self {
		if !a.maySeedLocked(p, mesh.UnknownPeerName) {
			return false
		}
		a.seedLocked(p, mesh.UnknownPeerName)
		a.flushLocked(p, nil, nil)
		return true
	}
	a.askLocked(lowest, p, subnet)
	return false
}

// seedLocked seeds p's ring: this router owns the whole pool until peers
// borrow from it. askedBy is the peer whose request made it seed, if any.
func (a *Allocator) seedLocked(p *pool, askedBy mesh.PeerName) {
	p.note(p.ring.seedAll(a.cfg.Self, a.cfg.Now().UnixNano()))
	p.refresh(a.cfg.Self, p.span)
	a.log.Info("seeded the IP allocation ring: this router owns the whole pool until peers borrow from it", "pool", p.prefix, "asked_by", askedBy)
}

// maySeedLocked reports whether this router may seed p's ring now. A
// router that reaches nobody seeds at once, unless it was told to join
// peers it does not reach yet. A router with peers (except: one that asked
// us for space, and so has no ring) first asks each of them for a ring it
// might already hold but has not sent yet, and seeds only when none came
// within the retry interval: a second seed would clash with theirs.
func (a *Allocator) maySeedLocked(p *pool, except mesh.PeerName) bool {
	var others []mesh.PeerName
	for _, q := range a.cfg.Peers.ReachablePeers() {
		if q != a.cfg.Self && q != except {
			others = append(others, q)
		}
	}
	if len(others) == 0 {
		return except != mesh.UnknownPeerName || a.cfg.Joining == nil || !a.cfg.Joining()
	}
	now := a.cfg.Now()
	if p.seedAsk.IsZero() || now.Sub(p.seedAsk) > 10*a.cfg.RetryInterval {
		p.seedAsk = now
		for _, q := range others {
			a.requestRingLocked(q, p, mesh.UnknownPeerName)
		}
		return false
	}
	return now.Sub(p.seedAsk) >= a.cfg.RetryInterval
}

// askLocked sends a space request, at most once per retry interval.
func (a *Allocator) askLocked(peer mesh.PeerName, p *pool, subnet netip.Prefix) {
	k := askKey{peer, subnet, kindSpaceRequest}
	now := a.cfg.Now()
	if t, ok := a.asked[k]; ok && now.Sub(t) < a.cfg.RetryInterval {
		return
	}
	a.asked[k] = now
	a.unicastLocked(peer, request{kind: kindSpaceRequest, pool: p.prefix, subnet: subnet}.encode())
}

// borrowLocked asks the reachable peer with the most free space in the
// subnet for some of it, or says why there is none.
func (a *Allocator) borrowLocked(p *pool, subnet netip.Prefix, us span, now time.Time) error {
	reach := a.reachableSet()
	free := map[mesh.PeerName]uint64{}
	var gone []mesh.PeerName
	deniedAll, quarantine := false, false
	for i := max(p.ring.at(us.lo), 0); i < len(p.ring.ents) && p.ring.ents[i].start < us.hi; i++ {
		e := p.ring.ents[i]
		if e.owner == a.cfg.Self || e.free == 0 {
			continue
		}
		switch {
		case !reach[e.owner]:
			if !slices.Contains(gone, e.owner) {
				gone = append(gone, e.owner)
			}
		case now.Before(a.denied[askKey{e.owner, subnet, kindSpaceRequest}]):
			deniedAll = true
		default:
			free[e.owner] += e.free
		}
	}
	for _, q := range p.quar {
		quarantine = quarantine || (q.span.overlaps(us) && now.Before(q.until))
	}
	if len(free) == 0 {
		switch {
		case quarantine:
			return errWait
		case len(gone) > 0 && !deniedAll:
			names := make([]string, len(gone))
			for i, g := range gone {
				names[i] = a.nick(g)
			}
			return fmt.Errorf("allocate in %s: %w (%s); if they are gone for good, run 'weft rmpeer %s' to take their ranges over", subnet, ErrUnreachableSpace, joinNames(names), gone[0])
		default:
			return fmt.Errorf("allocate in %s: %w: every address is in use; free some with 'weft detach', or allocate in another subnet", subnet, ErrNoSpace)
		}
	}
	var best mesh.PeerName
	for q, f := range free {
		if best == mesh.UnknownPeerName || f > free[best] || f == free[best] && q < best {
			best = q
		}
	}
	a.askLocked(best, p, subnet)
	return errWait
}

func joinNames(ns []string) string {
	out := ""
	for i, n := range ns {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}

// Claim gives ident exactly addr when addr lies in a pool: at once when
// this router owns it, else by asking its owner. It fails with
// ErrAddressTaken, naming the holder, when another target holds it. An
// address outside every pool is not managed: Claim returns false and nil.
func (a *Allocator) Claim(ctx context.Context, ident string, addr netip.Addr) (managed bool, err error) {
	err = a.loop(ctx, func() error {
		p := a.poolContaining(addr)
		if p == nil {
			return nil
		}
		managed = true
		v := a2u(addr)
		if v == p.span.lo || v == p.span.hi-1 {
			return fmt.Errorf("%s: %w: it is the network or broadcast address of the pool %s, never handed out; pick another address", addr, ErrReservedAddress, p.prefix)
		}
		if id, ok := p.idents[v]; ok {
			if id == ident {
				return nil
			}
			return &TakenError{Addr: addr, Holder: id, Host: "this host"}
		}
		if !p.ring.seeded() {
			if a.seedOrAskLocked(p, p.prefix) {
				return retry
			}
			return errWait
		}
		now := a.cfg.Now()
		owner := p.ring.owner(v)
		if owner == a.cfg.Self {
			if p.quarantinedAt(v, now) != 0 {
				return errWait // a holder on the other side of a merge may claim it
			}
			a.takeLocked(p, v, ident)
			return nil
		}
		if rep, ok := p.replies[v]; ok {
			delete(p.replies, v)
			if rep.denied {
				return &TakenError{Addr: addr, Holder: rep.holder, Host: a.nick(rep.from), Peer: rep.from}
			}
			// Not the owner any more: its ring was asked for, and the
			// claim goes again, to the new owner, after the retry interval.
		}
		if !a.reachableSet()[owner] {
			return fmt.Errorf("%s: %w: it belongs to the range of %s; if that host is gone for good, run 'weft rmpeer %s'", addr, ErrUnreachableSpace, a.nick(owner), owner)
		}
		if id, ok := p.pending[v]; ok && id != ident {
			return errWait // another target's claim of it is on its way
		}
		p.pending[v] = ident
		if t, ok := p.claimed[v]; !ok || now.Sub(t) >= a.cfg.RetryInterval {
			p.claimed[v] = now
			a.unicastLocked(owner, request{kind: kindClaim, pool: p.prefix, addr: addr, ident: ident}.encode())
		}
		return errWait
	})
	if managed {
		// The grant may have been taken for ident just as the wait ended;
		// a claim abandoned leaves nothing behind.
		a.mu.Lock()
		if p := a.poolContaining(addr); p != nil {
			v := a2u(addr)
			if p.idents[v] == ident {
				err = nil
			}
			if p.pending[v] == ident {
				delete(p.pending, v)
				delete(p.replies, v)
				if _, held := p.idents[v]; !held {
					delete(p.claimed, v)
				}
			}
		}
		a.mu.Unlock()
	}
	return managed, err
}

// Release frees every address ident holds and returns them.
func (a *Allocator) Release(ident string) []netip.Addr {
	a.mu.Lock()
	var out []netip.Addr
	for _, p := range a.pools {
		vs := slices.Clone(p.byIdent[ident])
		out = append(out, a.freeLocked(p, vs)...)
	}
	a.mu.Unlock()
	a.send()
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// Free frees addr if ident holds it, and reports whether it did.
func (a *Allocator) Free(ident string, addr netip.Addr) bool {
	a.mu.Lock()
	p := a.poolContaining(addr)
	ok := p != nil && p.idents[a2u(addr)] == ident
	if ok {
		a.freeLocked(p, []uint64{a2u(addr)})
	}
	a.mu.Unlock()
	a.send()
	return ok
}

func (a *Allocator) freeLocked(p *pool, vs []uint64) []netip.Addr {
	if len(vs) == 0 {
		return nil
	}
	out := make([]netip.Addr, 0, len(vs))
	gave := map[mesh.PeerName]bool{}
	for _, v := range vs {
		p.unhold(v)
		p.count(a.cfg.Self, v, false)
		out = append(out, u2a(v))
		// A peer whose claim we denied holds it too (a conflict after a
		// merge of separately seeded rings): it is now only theirs.
		if w, ok := p.wanted[v]; ok {
			delete(p.wanted, v)
			if p.ring.owner(v) == a.cfg.Self && a.reachableSet()[w] {
				p.note(p.ring.assign(span{v, v + 1}, w, p.usableIn))
				gave[w] = true
			}
		}
	}
	if len(gave) > 0 {
		p.refresh(a.cfg.Self, p.span)
		whole := encodeUpdate(p.wholeRing())
		for w := range gave {
			a.unicastLocked(w, whole)
		}
	}
	a.flushLocked(p, nil, out)
	return out
}

// Addresses returns the addresses ident holds here, in every pool.
func (a *Allocator) Addresses(ident string) []netip.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []netip.Addr
	for _, p := range a.pools {
		for _, v := range p.byIdent[ident] {
			out = append(out, u2a(v))
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// CreatePool makes prefix a pool this router allocates in (a Docker
// network's subnet). Routers that create the same prefix share it; it may
// not overlap the range or another pool.
func (a *Allocator) CreatePool(prefix netip.Prefix) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p := a.pools[prefix]; p != nil {
		p.created = true
		return nil
	}
	if err := a.canAddPool(prefix); err != nil {
		return err
	}
	a.newPool(prefix).created = true
	return nil
}

// ReleasePool stops this router from using a pool: its ranges there go to
// another router that uses the pool. It fails while addresses are held in
// it here. The range itself cannot be released.
func (a *Allocator) ReleasePool(prefix netip.Prefix) error {
	a.mu.Lock()
	p := a.pools[prefix]
	switch {
	case prefix == a.cfg.Range:
		a.mu.Unlock()
		return fmt.Errorf("release pool %s: it is the --ipalloc-range", prefix)
	case p == nil:
		a.mu.Unlock()
		return nil
	case len(p.idents) > 0:
		a.mu.Unlock()
		return fmt.Errorf("release pool %s: %w: %d addresses are still held here", prefix, ErrPoolInUse, len(p.idents))
	}
	p.created = false
	_, err := a.handOverLocked(p)
	a.mu.Unlock()
	a.send()
	if errors.Is(err, ErrNoHeir) {
		return nil // nobody else uses it: there is nothing to keep
	}
	return err
}

// Owners returns every peer that owns a range in some pool.
func (a *Allocator) Owners() []mesh.PeerName {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []mesh.PeerName
	for _, p := range a.pools {
		for _, e := range p.ring.ents {
			if !slices.Contains(out, e.owner) {
				out = append(out, e.owner)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Holder returns the ident that holds addr on this router ("" when none
// does).
func (a *Allocator) Holder(addr netip.Addr) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p := a.poolContaining(addr); p != nil {
		return p.idents[a2u(addr)]
	}
	return ""
}
