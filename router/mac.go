package router

import (
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/mesh"
)

// macKey packs a 6-byte MAC address into a map key.
func macKey(b []byte) uint64 {
	_ = b[5]
	return uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 |
		uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
}

// macEntry is the owner of one MAC. Its fields are atomics so that the
// readers update known MACs without a lock.
type macEntry struct {
	owner atomic.Uint64 // mesh.PeerName; the router's own name for local MACs
	seen  atomic.Int64  // unix nanoseconds of the last refresh
}

// learnResult tells what learning a source MAC did.
type learnResult uint8

const (
	learnKnown learnResult = iota // already known with this owner
	learnNew                      // newly inserted
	learnMoved                    // moved from another owner
	learnLoop                     // seen from another owner too recently: drop the frame
)

// macTable maps MAC addresses to the peer they sit behind. Lookups and
// the learning of known MACs read a copy-on-write map snapshot without
// locks; inserting a new MAC or expiring old ones copies the map under mu.
type macTable struct {
	snap      atomic.Pointer[map[uint64]*macEntry]
	mu        sync.Mutex // serialises writers of snap
	maxAge    int64      // entries older than this expire
	refresh   int64      // seen is rewritten only when older than this (fine enough for loopGuard)
	loopGuard int64      // a MAC seen from one owner this recently does not move
	max       int        // bound on the number of entries
	moves     atomic.Uint64
	evictions atomic.Uint64
}

func newMACTable(maxAge, loopGuard time.Duration, max int) *macTable {
	t := &macTable{
		maxAge:    int64(maxAge),
		refresh:   int64(min(maxAge/10, loopGuard/2)),
		loopGuard: int64(loopGuard),
		max:       max,
	}
	m := make(map[uint64]*macEntry)
	t.snap.Store(&m)
	return t
}

// lookup returns the owner of the MAC with key k.
func (t *macTable) lookup(k uint64) (mesh.PeerName, bool) {
	e := (*t.snap.Load())[k]
	if e == nil {
		return mesh.UnknownPeerName, false
	}
	return mesh.PeerName(e.owner.Load()), true
}

// macPending is a MAC first seen during a batch, inserted at its end.
type macPending struct {
	key   uint64
	owner mesh.PeerName
	seen  int64
}

// learn records that MAC k was seen behind owner at time now (unix nanos)
// and inserts it at once if it is new. See observe.
func (t *macTable) learn(k uint64, owner mesh.PeerName, now int64) learnResult {
	var p [1]macPending
	pend := p[:0]
	res := t.observe(k, owner, now, &pend)
	t.insert(pend)
	return res
}

// observe records that MAC k was seen behind owner at time now (unix
// nanos). A MAC already known behind another owner moves, unless it was
// seen there within the loop guard: then the frame is probably looping
// (our own injected frame captured again, or two bridged segments) and
// learnLoop tells the caller to drop it. A new MAC is appended to pend;
// the caller inserts all of a batch's new MACs with one insert, so that a
// burst of new MACs copies the table once per batch, not once per MAC.
func (t *macTable) observe(k uint64, owner mesh.PeerName, now int64, pend *[]macPending) learnResult {
	if e := (*t.snap.Load())[k]; e != nil {
		return t.update(e, owner, now)
	}
	*pend = append(*pend, macPending{key: k, owner: owner, seen: now})
	return learnNew
}

// insert adds new MACs (later duplicates win) with one copy of the table,
// dropping expired entries and evicting the oldest when full.
func (t *macTable) insert(pend []macPending) {
	if len(pend) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.snap.Load()
	now := pend[len(pend)-1].seen
	m := make(map[uint64]*macEntry, len(old)+len(pend))
	for key, e := range old {
		if now-e.seen.Load() <= t.maxAge {
			m[key] = e
		}
	}
	for _, p := range pend {
		if e := m[p.key]; e != nil { // learned meanwhile by the other reader
			t.update(e, p.owner, p.seen)
			continue
		}
		if len(m) >= t.max {
			t.evictOldest(m)
		}
		e := &macEntry{}
		e.owner.Store(uint64(p.owner))
		e.seen.Store(p.seen)
		m[p.key] = e
	}
	t.snap.Store(&m)
}

func (t *macTable) update(e *macEntry, owner mesh.PeerName, now int64) learnResult {
	seen := e.seen.Load()
	if mesh.PeerName(e.owner.Load()) != owner {
		if now-seen < t.loopGuard {
			return learnLoop
		}
		e.owner.Store(uint64(owner))
		e.seen.Store(now)
		t.moves.Add(1)
		return learnMoved
	}
	if now-seen > t.refresh {
		e.seen.Store(now)
	}
	return learnKnown
}

// evictOldest removes the least recently seen entry of m. Called with mu
// held on a map not yet published.
func (t *macTable) evictOldest(m map[uint64]*macEntry) {
	var oldKey uint64
	oldest := int64(1<<63 - 1)
	for k, e := range m {
		if s := e.seen.Load(); s < oldest {
			oldest, oldKey = s, k
		}
	}
	delete(m, oldKey)
	t.evictions.Add(1)
}

// expire removes entries not seen for maxAge and returns how many.
func (t *macTable) expire(now int64) int {
	old := *t.snap.Load()
	stale := 0
	for _, e := range old {
		if now-e.seen.Load() > t.maxAge {
			stale++
		}
	}
	if stale == 0 {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old = *t.snap.Load()
	m := make(map[uint64]*macEntry, len(old))
	for k, e := range old {
		if now-e.seen.Load() <= t.maxAge {
			m[k] = e
		}
	}
	t.snap.Store(&m)
	return len(old) - len(m)
}

// MACEntry is one learned MAC address, for status output.
type MACEntry struct {
	// MAC is the hardware address.
	MAC net.HardwareAddr
	// Peer is the peer the MAC sits behind; the router's own name for
	// MACs on the local bridge.
	Peer mesh.PeerName
	// LastSeen is when a frame from the MAC was last learned (refreshed
	// with a granularity of a tenth of the maximum age).
	LastSeen time.Time
}

// entries returns the table sorted by MAC.
func (t *macTable) entries() []MACEntry {
	m := *t.snap.Load()
	out := make([]MACEntry, 0, len(m))
	for k, e := range m {
		mac := make(net.HardwareAddr, 6)
		mesh.PeerName(k).Put(mac)
		out = append(out, MACEntry{MAC: mac, Peer: mesh.PeerName(e.owner.Load()), LastSeen: time.Unix(0, e.seen.Load())})
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].MAC) < string(out[j].MAC) })
	return out
}
