package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/weftnet/weft/mesh"
)

// Status is a snapshot of the Allocator for `weft status ipam`, `weft
// report` and /metrics.
type Status struct {
	// State is "ready", "idle" (no ring yet: the first allocation seeds
	// it), "waiting for peers" or "no space: ..." with what to do.
	State string
	// Range and DefaultSubnet are the configured ones.
	Range, DefaultSubnet netip.Prefix
	// Pools lists the range first, then the other pools by prefix.
	Pools []PoolStatus
}

// PoolStatus is one pool.
type PoolStatus struct {
	Prefix netip.Prefix
	// Seed is zero while the pool has no ring.
	Seed Seed
	// Size is the number of addresses in the pool.
	Size uint64
	// Used here: used locally by this router (created, not only heard of).
	Used bool
	// Held is how many addresses targets hold on this router.
	Held uint64
	// Peers is every owner of a range, by name.
	Peers []PeerShare
	// Conflicts are addresses held here and on another host too.
	Conflicts []Conflict
	// Quarantined counts addresses kept out of allocation while a
	// separately seeded ring's routers claim theirs.
	Quarantined uint64
	// Tokens is the number of ranges in the ring.
	Tokens int
}

// PeerShare is what one peer owns of a pool.
type PeerShare struct {
	Name     mesh.PeerName
	NickName string
	// Owned is the number of addresses in its ranges, Free how many of
	// them it reports free, Used how many are held (Owned less Free and
	// less the pool's network and broadcast addresses, never handed out).
	Owned, Free, Used uint64
	Reachable         bool
}

// Share is the fraction of the pool the peer owns.
func (s PeerShare) Share(size uint64) float64 { return float64(s.Owned) / float64(size) }

// Status returns a snapshot.
func (a *Allocator) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	reach := a.reachableSet()
	now := a.cfg.Now()
	st := Status{Range: a.cfg.Range, DefaultSubnet: a.cfg.DefaultSubnet}
	for _, p := range a.pools {
		ps := PoolStatus{Prefix: p.prefix, Seed: p.ring.seed, Size: p.span.size(), Used: p.created, Held: uint64(len(p.idents)), Tokens: len(p.ring.ents)}
		shares := map[mesh.PeerName]*PeerShare{}
		for i, e := range p.ring.ents {
			s := shares[e.owner]
			if s == nil {
				s = &PeerShare{Name: e.owner, NickName: a.cfg.Peers.PeerNickName(e.owner), Reachable: reach[e.owner]}
				shares[e.owner] = s
			}
			sp := p.ring.span(i)
			s.Owned += sp.size()
			s.Free += e.free
			reserved := uint64(0)
			for _, v := range []uint64{p.span.lo, p.span.hi - 1} {
				if sp.contains(v) {
					reserved++
				}
			}
			if used := sp.size() - reserved; e.free < used {
				s.Used += used - e.free
			}
		}
		for _, s := range shares {
			ps.Peers = append(ps.Peers, *s)
		}
		slices.SortFunc(ps.Peers, func(x, y PeerShare) int { return int(int64(x.Name) - int64(y.Name)) })
		for _, c := range p.conflicts {
			ps.Conflicts = append(ps.Conflicts, c)
		}
		slices.SortFunc(ps.Conflicts, func(x, y Conflict) int { return x.Addr.Compare(y.Addr) })
		for _, q := range p.quar {
			if now.Before(q.until) {
				ps.Quarantined += q.span.size()
			}
		}
		st.Pools = append(st.Pools, ps)
	}
	slices.SortFunc(st.Pools, func(x, y PoolStatus) int {
		switch {
		case x.Prefix == a.cfg.Range:
			return -1
		case y.Prefix == a.cfg.Range:
			return 1
		}
		return x.Prefix.Addr().Compare(y.Prefix.Addr())
	})
	st.State = a.stateLocked(st.Pools[0], reach)
	return st
}

// stateLocked summarises the range's pool in one phrase.
func (a *Allocator) stateLocked(ps PoolStatus, reach map[mesh.PeerName]bool) string {
	conflicts := ""
	if n := len(ps.Conflicts); n > 0 {
		conflicts = fmt.Sprintf("; %d address conflicts with a separately seeded mesh (see below)", n)
	}
	if ps.Seed.IsZero() {
		if a.waiting > 0 {
			return "waiting for peers" + conflicts
		}
		return "idle (no addresses allocated yet; the first attach seeds the range)" + conflicts
	}
	var freeHere, freeReach, freeGone uint64
	for _, s := range ps.Peers {
		switch {
		case s.Name == a.cfg.Self:
			freeHere += s.Free
		case reach[s.Name]:
			freeReach += s.Free
		default:
			freeGone += s.Free
		}
	}
	switch {
	case freeHere > 0 || freeReach > 0:
		if a.waiting > 0 {
			return "ready (waiting for peers to lend space)" + conflicts
		}
		return "ready" + conflicts
	case freeGone > 0:
		return "no space: all free ranges are owned by unreachable peers; if they are gone for good, use 'weft rmpeer'" + conflicts
	default:
		return "no space: every address of the range is in use" + conflicts
	}
}

// SeededAt is when the seed was made.
func (s Seed) SeededAt() time.Time { return time.Unix(0, s.At).UTC() }
