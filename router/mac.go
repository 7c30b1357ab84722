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

// macEntry is the owner of one MAC. owner and seen are atomics so that
// the readers look up and refresh known MACs without a lock; key is fixed
// before the entry is published; the other fields belong to macTable.mu.
type macEntry struct {
	owner atomic.Uint64 // mesh.PeerName; the router's own name for local MACs
	seen  atomic.Int64  // unix nanoseconds of the last refresh

	key        uint64
	port       *macPort  // the port whose queue holds the entry
	queued     int64     // seen when the entry was last put at its queue's back
	prev, next *macEntry // the port's queue
}

// macPort is where MACs were learned: the local device (the router's own
// name) or one peer. Its queue holds its entries in the order they were
// queued, oldest first; a refreshed entry is moved to the back when it
// reaches the front (second chance), so that the front is always close to
// the least recently seen entry.
type macPort struct {
	name mesh.PeerName
	q    macEntry // sentinel of the circular queue
	n    int
	at   int // index in macTable.portList
}

func (p *macPort) push(e *macEntry) {
	e.port = p
	e.prev, e.next = p.q.prev, &p.q
	p.q.prev.next = e
	p.q.prev = e
	p.n++
}

func (p *macPort) unlink(e *macEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next, e.port = nil, nil, nil
	p.n--
}

// learnResult tells what learning a source MAC did.
type learnResult uint8

const (
	learnKnown learnResult = iota // already known with this owner
	learnNew                      // new: queued for insert
	learnMoved                    // moved from another owner
	learnLoop                     // seen from another owner too recently: drop the frame
)

// macIndex is the table's hash index: open addressing with linear
// probing over atomic slots, so that readers search it without a lock.
// Writers (holding macTable.mu) fill a nil or tombstone slot and delete by
// writing a tombstone; a slot never returns to nil, so a reader's probe
// never stops short of a key that is present. When live entries and
// tombstones fill three quarters of the slots, the writer builds a fresh
// index of the live entries and publishes it: one O(size) rebuild per
// size/2 deletions at least, O(1) per MAC amortised.
type macIndex struct {
	slots []atomic.Pointer[macEntry]
	shift uint // 64 - log2(len(slots))
	used  int  // slots not nil: live entries and tombstones
}

// macTomb marks a slot whose entry was deleted.
var macTomb = new(macEntry)

func newMACIndex(max int) *macIndex {
	bits := uint(4)
	for 1<<bits < 2*max {
		bits++
	}
	return &macIndex{slots: make([]atomic.Pointer[macEntry], 1<<bits), shift: 64 - bits}
}

func (x *macIndex) home(k uint64) int { return int((k * 0x9e3779b97f4a7c15) >> x.shift) }

// get returns the entry of key k, or nil. Safe concurrently with writers.
func (x *macIndex) get(k uint64) *macEntry {
	mask := len(x.slots) - 1
	for i, n := x.home(k), 0; n <= mask; i, n = (i+1)&mask, n+1 {
		e := x.slots[i].Load()
		if e == nil {
			return nil
		}
		if e != macTomb && e.key == k {
			return e
		}
	}
	return nil
}

// put adds e, whose key is absent. Called with macTable.mu held.
func (x *macIndex) put(e *macEntry) {
	mask := len(x.slots) - 1
	for i := x.home(e.key); ; i = (i + 1) & mask {
		switch x.slots[i].Load() {
		case nil:
			x.used++
			fallthrough
		case macTomb:
			x.slots[i].Store(e)
			return
		}
	}
}

// del deletes e. Called with macTable.mu held.
func (x *macIndex) del(e *macEntry) {
	mask := len(x.slots) - 1
	for i, n := x.home(e.key), 0; n <= mask; i, n = (i+1)&mask, n+1 {
		switch x.slots[i].Load() {
		case nil:
			return
		case e:
			x.slots[i].Store(macTomb)
			return
		}
	}
}

// macTable maps MAC addresses to the peer they sit behind.
//
// Lookups and the refresh of known MACs take no lock and allocate
// nothing (see macIndex). Inserting, moving, evicting and expiring MACs
// take mu and cost O(1) each (amortised: the index is rebuilt at most
// once per max/2 deletions); no operation copies the table per MAC. Only when the
// whole table is full does an insert look for the port with the most
// entries, O(ports).
//
// Two bounds hold against a port flooding new source MACs: the table has
// at most max entries, and each port at most portMax. A new MAC of a port
// that holds portMax is refused (counted in refused): frames from it are
// still forwarded, frames to it are flooded as to any unknown MAC, and the
// port's learned MACs stay. When the whole table is full, the port with
// the most entries gives up its least recently seen one (counted in
// evictions): a flooding port never holds more than portMax, the others
// keep room for max-portMax, and once the flooder is the largest port it
// only churns its own entries.
type macTable struct {
	idx       atomic.Pointer[macIndex]
	maxAge    int64 // entries older than this expire
	refresh   int64 // seen is rewritten only when older than this (fine enough for loopGuard)
	loopGuard int64 // a MAC seen from one owner this recently does not move
	max       int   // bound on the number of entries
	portMax   int   // bound on the entries of one port

	mu       sync.Mutex // serialises writers: the index, the ports, n
	ports    map[mesh.PeerName]*macPort
	portList []*macPort // the ports again, for evict's scan
	n        int

	moves     atomic.Uint64
	evictions atomic.Uint64
	refused   atomic.Uint64
}

func newMACTable(maxAge, loopGuard time.Duration, max, portMax int) *macTable {
	t := &macTable{
		maxAge:    int64(maxAge),
		refresh:   int64(min(maxAge/10, loopGuard/2)),
		loopGuard: int64(loopGuard),
		max:       max,
		portMax:   min(portMax, max),
		ports:     make(map[mesh.PeerName]*macPort),
	}
	t.idx.Store(newMACIndex(max))
	return t
}

func (t *macTable) get(k uint64) *macEntry { return t.idx.Load().get(k) }

// lookup returns the owner of the MAC with key k.
func (t *macTable) lookup(k uint64) (mesh.PeerName, bool) {
	e := t.get(k)
	if e == nil {
		return mesh.UnknownPeerName, false
	}
	return mesh.PeerName(e.owner.Load()), true
}

// macPending is a MAC first seen (or seen moved) during a batch, inserted
// at its end.
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
// learnLoop tells the caller to drop it. A new MAC is appended to pend,
// and so is a moved one (to change its port); the caller inserts all of a
// batch's MACs with one insert, which takes the writers' lock once.
func (t *macTable) observe(k uint64, owner mesh.PeerName, now int64, pend *[]macPending) learnResult {
	if e := t.get(k); e != nil {
		res := t.update(e, owner, now)
		if res == learnMoved {
			*pend = append(*pend, macPending{key: k, owner: owner, seen: now})
		}
		return res
	}
	*pend = append(*pend, macPending{key: k, owner: owner, seen: now})
	return learnNew
}

// insert adds new MACs and moves moved ones to their new port, each in
// O(1), evicting or refusing as the bounds require (see macTable).
func (t *macTable) insert(pend []macPending) {
	if len(pend) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range pend {
		e := t.get(p.key)
		if e != nil {
			if cur := mesh.PeerName(e.owner.Load()); cur != p.owner && cur == e.port.name {
				// Learned meanwhile by another reader behind another owner.
				t.update(e, p.owner, p.seen)
			}
			if mesh.PeerName(e.owner.Load()) != e.port.name {
				t.move(e)
			}
			continue
		}
		port := t.portFor(p.owner)
		if port.n >= t.portMax || t.n >= t.max && !t.evict(port) {
			t.refused.Add(1)
			t.dropPort(port)
			continue
		}
		e = &macEntry{key: p.key, queued: p.seen}
		e.owner.Store(uint64(p.owner))
		e.seen.Store(p.seen)
		port.push(e)
		t.add(e)
	}
}

// move re-queues e, whose owner changed, at its new owner's port; if that
// port is full, e is forgotten and counted as refused. Called with mu held.
func (t *macTable) move(e *macEntry) {
	old := e.port
	port := t.portFor(mesh.PeerName(e.owner.Load()))
	if port.n >= t.portMax {
		t.remove(e)
		t.refused.Add(1)
	} else {
		old.unlink(e)
		e.queued = e.seen.Load()
		port.push(e)
	}
	t.dropPort(old)
	t.dropPort(port)
}

// portFor returns owner's port, made if it has none. Called with mu held.
func (t *macTable) portFor(owner mesh.PeerName) *macPort {
	p := t.ports[owner]
	if p == nil {
		p = &macPort{name: owner, at: len(t.portList)}
		p.q.prev, p.q.next = &p.q, &p.q
		t.ports[owner] = p
		t.portList = append(t.portList, p)
	}
	return p
}

// dropPort forgets p if it holds no entries. Called with mu held.
func (t *macTable) dropPort(p *macPort) {
	if p.n == 0 && t.ports[p.name] == p {
		delete(t.ports, p.name)
		last := t.portList[len(t.portList)-1]
		last.at = p.at
		t.portList[p.at] = last
		t.portList[len(t.portList)-1] = nil
		t.portList = t.portList[:len(t.portList)-1]
	}
}

// add puts e, new, into the index. Called with mu held.
func (t *macTable) add(e *macEntry) {
	x := t.idx.Load()
	if x.used+1 > len(x.slots)*3/4 {
		// Tombstones fill the index: publish a fresh one. Readers still
		// searching the old one find what it held, at worst stale.
		y := &macIndex{slots: make([]atomic.Pointer[macEntry], len(x.slots)), shift: x.shift}
		for i := range x.slots {
			if o := x.slots[i].Load(); o != nil && o != macTomb {
				y.put(o)
			}
		}
		t.idx.Store(y)
		x = y
	}
	x.put(e)
	t.n++
}

// remove deletes e from the table. Called with mu held.
func (t *macTable) remove(e *macEntry) {
	e.port.unlink(e)
	t.idx.Load().del(e)
	t.n--
}

// evict makes room for one entry of port in a full table: the port with
// the most entries loses its least recently seen one. Called with mu held.
func (t *macTable) evict(port *macPort) bool {
	victim := port
	for _, p := range t.portList {
		if p.n > victim.n {
			victim = p
		}
	}
	e := victim.oldest()
	if e == nil {
		return false
	}
	t.remove(e)
	if victim != port {
		t.dropPort(victim)
	}
	t.evictions.Add(1)
	return true
}

// macSecondChances bounds how many refreshed entries oldest moves to the
// back of the queue before it takes the front one regardless.
const macSecondChances = 8

// oldest returns the queue's least recently seen entry (approximately: a
// refreshed entry at the front is moved to the back, at most
// macSecondChances times), or nil if the port has none.
func (p *macPort) oldest() *macEntry {
	for range macSecondChances {
		e := p.q.next
		if e == &p.q {
			return nil
		}
		if s := e.seen.Load(); s > e.queued {
			p.unlink(e)
			e.queued = s
			p.push(e)
			continue
		}
		return e
	}
	if e := p.q.next; e != &p.q {
		return e
	}
	return nil
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

// expire removes entries not seen for maxAge and returns how many. Each
// port's queue is walked from its front only as far as entries queued
// before the cutoff, so the work is that of the entries removed or
// re-queued, not of the table.
func (t *macTable) expire(now int64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for i := len(t.portList) - 1; i >= 0; i-- { // dropPort moves the last port to i
		p := t.portList[i]
		for e := p.q.next; e != &p.q && now-e.queued > t.maxAge; e = p.q.next {
			if s := e.seen.Load(); now-s <= t.maxAge {
				p.unlink(e)
				e.queued = s
				p.push(e)
				continue
			}
			t.remove(e)
			n++
		}
		t.dropPort(p)
	}
	return n
}

// len returns the number of entries.
func (t *macTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
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
	t.mu.Lock()
	out := make([]MACEntry, 0, t.n)
	for _, p := range t.portList {
		for e := p.q.next; e != &p.q; e = e.next {
			mac := make(net.HardwareAddr, 6)
			mesh.PeerName(e.key).Put(mac)
			out = append(out, MACEntry{MAC: mac, Peer: mesh.PeerName(e.owner.Load()), LastSeen: time.Unix(0, e.seen.Load())})
		}
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return string(out[i].MAC) < string(out[j].MAC) })
	return out
}
