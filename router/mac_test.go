package router

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
)

func TestMACLearning(t *testing.T) {
	const (
		self mesh.PeerName = 1
		p2   mesh.PeerName = 2
		p3   mesh.PeerName = 3
	)
	sec := int64(time.Second)
	m := newMACTable(10*time.Minute, time.Second, 100, 100)
	k := macKey([]byte{2, 0, 0, 0, 0, 1})
	steps := []struct {
		name  string
		owner mesh.PeerName
		at    int64
		want  learnResult
		after mesh.PeerName
	}{
		{"new local", self, 0, learnNew, self},
		{"refresh", self, 1 * sec, learnKnown, self},
		{"remote claim within guard is a loop", p2, 1*sec + sec/2, learnLoop, self},
		{"move to p2 after guard", p2, 3 * sec, learnMoved, p2},
		{"known at p2", p2, 4 * sec, learnKnown, p2},
		{"move to p3", p3, 10 * sec, learnMoved, p3},
		{"back to local", self, 20 * sec, learnMoved, self},
	}
	for _, s := range steps {
		if got := m.learn(k, s.owner, s.at); got != s.want {
			t.Fatalf("%s: learn = %d, want %d", s.name, got, s.want)
		}
		if o, ok := m.lookup(k); !ok || o != s.after {
			t.Fatalf("%s: owner %v %v, want %v", s.name, o, ok, s.after)
		}
	}
	if m.moves.Load() != 3 {
		t.Fatalf("moves %d", m.moves.Load())
	}
}

func TestMACExpiry(t *testing.T) {
	min := int64(time.Minute)
	m := newMACTable(10*time.Minute, time.Second, 100, 100)
	a, b := macKey([]byte{2, 0, 0, 0, 0, 1}), macKey([]byte{2, 0, 0, 0, 0, 2})
	m.learn(a, 1, 0)
	m.learn(b, 1, 0)
	// A refresh at 2 minutes keeps b alive.
	m.learn(b, 1, 2*min)
	if n := m.expire(11 * min); n != 1 {
		t.Fatalf("expired %d, want 1", n)
	}
	if _, ok := m.lookup(a); ok {
		t.Fatal("a survived expiry")
	}
	if _, ok := m.lookup(b); !ok {
		t.Fatal("b expired too early")
	}
	if n := m.expire(11 * min); n != 0 {
		t.Fatalf("second sweep expired %d", n)
	}
}

func TestMACKnownNoAllocs(t *testing.T) {
	m := newMACTable(10*time.Minute, time.Second, 100, 100)
	k := macKey([]byte{2, 0, 0, 0, 0, 1})
	m.learn(k, 1, 0)
	now := int64(0)
	var pend []macPending
	allocs := testing.AllocsPerRun(1000, func() {
		now += int64(time.Second)
		m.observe(k, 1, now, &pend)
		m.lookup(k)
	})
	if len(pend) != 0 {
		t.Fatal("a known MAC was queued as new")
	}
	if allocs != 0 {
		t.Fatalf("learning a known MAC allocates %v times", allocs)
	}
}

func TestMACBatchInsert(t *testing.T) {
	m := newMACTable(10*time.Minute, time.Second, 100, 100)
	var pend []macPending
	for i := range 5 {
		if r := m.observe(macKey([]byte{2, 0, 0, 0, 0, byte(i % 3)}), 1, 10, &pend); r != learnNew {
			t.Fatalf("observe %d: %d", i, r)
		}
	}
	if _, ok := m.lookup(macKey([]byte{2, 0, 0, 0, 0, 0})); ok {
		t.Fatal("visible before insert")
	}
	m.insert(pend)
	if n := m.len(); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}
}

// key returns the key of MAC 02:00:hi:i (i's low 32 bits).
func key(hi byte, i int) uint64 { return uint64(2)<<40 | uint64(hi)<<32 | uint64(uint32(i)) }

// portLen returns how many entries the table holds behind owner.
func portLen(m *macTable, owner mesh.PeerName) int {
	n := 0
	for _, e := range m.entries() {
		if e.Peer == owner {
			n++
		}
	}
	return n
}

// checkQueues checks that the ports' queues and counts agree with the
// shards' maps.
func checkQueues(t *testing.T, m *macTable) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	total := 0
	for name, p := range m.ports {
		if p.n == 0 {
			t.Errorf("port %v kept empty", name)
		}
		n := 0
		for e := p.q.next; e != &p.q; e = e.next {
			if e.port != p || mesh.PeerName(e.owner.Load()) != name || m.get(e.key) != e {
				t.Errorf("entry %x queued at %v owned by %v", e.key, name, mesh.PeerName(e.owner.Load()))
			}
			n++
		}
		if n != p.n {
			t.Errorf("port %v: %d queued, count %d", name, n, p.n)
		}
		total += n
	}
	indexed := 0
	x := m.idx.Load()
	for i := range x.slots {
		if e := x.slots[i].Load(); e != nil && e != macTomb {
			indexed++
		}
	}
	if total != m.n || indexed != m.n || len(m.portList) != len(m.ports) {
		t.Errorf("%d queued, %d indexed, n %d, %d ports listed of %d", total, indexed, m.n, len(m.portList), len(m.ports))
	}
	for i, p := range m.portList {
		if p.at != i || m.ports[p.name] != p {
			t.Errorf("port %v listed at %d, thinks %d", p.name, i, p.at)
		}
	}
}

func TestMACPortLimit(t *testing.T) {
	m := newMACTable(10*time.Minute, time.Second, 8, 3)
	for i := range 4 {
		m.learn(key(1, i), 1, int64(i))
	}
	if _, ok := m.lookup(key(1, 3)); ok || m.refused.Load() != 1 {
		t.Fatalf("fourth MAC of port 1 learned (refused %d)", m.refused.Load())
	}
	for i := range 3 {
		m.learn(key(2, i), 2, 10)
	}
	m.learn(key(3, 0), 3, 20)
	m.learn(key(3, 1), 3, 21)
	if m.len() != 8 || m.evictions.Load() != 0 {
		t.Fatalf("len %d evictions %d", m.len(), m.evictions.Load())
	}
	// Full: a new MAC of port 3 (below its limit) evicts the oldest MAC of
	// a port with the most entries, 1 or 2.
	m.learn(key(3, 2), 3, 22)
	if m.len() != 8 || m.evictions.Load() != 1 || portLen(m, 3) != 3 || portLen(m, 1)+portLen(m, 2) != 5 {
		t.Fatalf("len %d evictions %d ports %d %d %d", m.len(), m.evictions.Load(), portLen(m, 1), portLen(m, 2), portLen(m, 3))
	}
	_, ok1 := m.lookup(key(1, 0))
	_, ok2 := m.lookup(key(2, 0))
	if ok1 == ok2 {
		t.Fatalf("evicted port 1's oldest: %v, port 2's: %v", !ok1, !ok2)
	}
	checkQueues(t, m)
}

func TestMACBounded(t *testing.T) {
	// One port alone cannot fill a table larger than its limit; the
	// limit is at most the table size.
	m := newMACTable(10*time.Minute, time.Second, 4, 100)
	for i := range 10 {
		m.learn(key(0, i), 1, int64(i))
	}
	if m.len() != 4 || m.refused.Load() != 6 || m.evictions.Load() != 0 {
		t.Fatalf("len %d refused %d evictions %d", m.len(), m.refused.Load(), m.evictions.Load())
	}
	if e := m.entries(); len(e) != 4 || e[0].MAC.String() != "02:00:00:00:00:00" {
		t.Fatalf("entries %v", e)
	}
	checkQueues(t, m)
}

func TestMACMovePort(t *testing.T) {
	sec := int64(time.Second)
	m := newMACTable(10*time.Minute, time.Second, 10, 2)
	m.learn(key(0, 1), 1, 0)
	if r := m.learn(key(0, 1), 2, 2*sec); r != learnMoved {
		t.Fatalf("learn %d", r)
	}
	if portLen(m, 2) != 1 || len(m.ports) != 1 {
		t.Fatalf("ports %d, port 2 holds %d", len(m.ports), portLen(m, 2))
	}
	checkQueues(t, m)
	// Port 3 is at its limit: a MAC moving there is forgotten.
	m.learn(key(3, 0), 3, 2*sec)
	m.learn(key(3, 1), 3, 2*sec)
	m.learn(key(0, 1), 3, 4*sec)
	if _, ok := m.lookup(key(0, 1)); ok || m.refused.Load() != 1 || m.len() != 2 {
		t.Fatalf("moved into a full port: refused %d len %d", m.refused.Load(), m.len())
	}
	checkQueues(t, m)
}

// TestMACLearnFullConstantWork: learning a new MAC into a full table costs
// the same whatever the table's size: no copy of the table per insert.
func TestMACLearnFullConstantWork(t *testing.T) {
	for _, size := range []int{1024, 16384} {
		m := newMACTable(10*time.Minute, time.Second, size, size)
		for i := range size {
			m.learn(key(1, i), 1, 0)
		}
		i := 0
		allocs := testing.AllocsPerRun(2000, func() {
			i++
			m.learn(key(2, i), 2, 1)
		})
		var pend []macPending
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		batches := testing.AllocsPerRun(100, func() {
			pend = pend[:0]
			for range 32 {
				i++
				m.observe(key(2, i), 2, 1, &pend)
			}
			m.insert(pend)
		})
		runtime.ReadMemStats(&after)
		bytes := float64(after.TotalAlloc-before.TotalAlloc) / (101 * 32)
		// One entry per new MAC, plus the shards' maps growing now and then.
		if allocs > 2 || batches > 40 || bytes > 512 {
			t.Errorf("table of %d: %.1f allocations per new MAC, in batches of 32: %.1f allocations per batch, %.0f bytes per MAC",
				size, allocs, batches, bytes)
		}
		if m.len() != size || m.evictions.Load() != uint64(2000+1+(100+1)*32) {
			t.Errorf("table of %d: len %d evictions %d", size, m.len(), m.evictions.Load())
		}
		checkQueues(t, m)
	}
}

// TestMACFlood: one port learning 100,000 distinct MACs holds at most the
// port limit and displaces at most that many of other ports' MACs; the
// others' MACs that stay keep resolving.
func TestMACFlood(t *testing.T) {
	const (
		limit   = 256
		flooder = mesh.PeerName(9)
	)
	for _, tc := range []struct {
		size    int
		maxLost int  // other ports' MACs the flood may evict
		atLimit bool // the flooder ends at its limit, refused the rest
	}{
		{size: 1000, maxLost: 0, atLimit: true},     // room for the limit
		{size: 700, maxLost: limit, atLimit: false}, // full: the flooder gets a fair share
	} {
		m := newMACTable(10*time.Minute, time.Second, tc.size, limit)
		for p := 1; p <= 3; p++ {
			for i := range 200 {
				m.learn(key(byte(p), i), mesh.PeerName(p), 0)
			}
		}
		var pend []macPending
		for i := range 100000 {
			m.observe(key(9, i), flooder, 1, &pend)
			if len(pend) == 32 {
				m.insert(pend)
				pend = pend[:0]
			}
		}
		m.insert(pend)
		held := portLen(m, flooder)
		if held > limit || tc.atLimit && (held != limit || m.refused.Load() != 100000-limit) {
			t.Fatalf("table of %d: flooder holds %d (limit %d), refused %d", tc.size, held, limit, m.refused.Load())
		}
		lost := 0
		for p := 1; p <= 3; p++ {
			for i := range 200 {
				switch o, ok := m.lookup(key(byte(p), i)); {
				case !ok:
					lost++
				case o != mesh.PeerName(p):
					t.Fatalf("MAC of port %d now behind %v", p, o)
				}
			}
		}
		if lost > tc.maxLost || m.len() > tc.size {
			t.Fatalf("table of %d: others lost %d, len %d", tc.size, lost, m.len())
		}
		t.Logf("table of %d: flooder holds %d, others lost %d, evictions %d, refused %d",
			tc.size, held, lost, m.evictions.Load(), m.refused.Load())
		checkQueues(t, m)
	}
}

// TestMACConcurrent learns, moves, expires and looks up from several
// goroutines; run it with -race.
func TestMACConcurrent(t *testing.T) {
	m := newMACTable(time.Second, time.Millisecond, 512, 128)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			var pend []macPending
			for i := range 20000 {
				now := int64(i) * int64(time.Millisecond)
				m.observe(key(0, i%300), mesh.PeerName(g%3+1), now, &pend)
				m.lookup(key(0, (i*7)%300))
				if len(pend) >= 8 {
					m.insert(pend)
					pend = pend[:0]
				}
				if g == 0 && i%1000 == 0 {
					m.expire(now)
				}
			}
			m.insert(pend) // every owner change is followed by an insert
		})
	}
	wg.Wait()
	checkQueues(t, m)
}
