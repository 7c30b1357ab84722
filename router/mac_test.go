package router

import (
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
	m := newMACTable(10*time.Minute, time.Second, 100)
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
	m := newMACTable(10*time.Minute, time.Second, 100)
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

func TestMACBounded(t *testing.T) {
	m := newMACTable(10*time.Minute, time.Second, 4)
	for i := range 10 {
		m.learn(macKey([]byte{2, 0, 0, 0, 0, byte(i)}), 1, int64(i))
	}
	if n := len(*m.snap.Load()); n != 4 {
		t.Fatalf("size %d, want 4", n)
	}
	if _, ok := m.lookup(macKey([]byte{2, 0, 0, 0, 0, 9})); !ok {
		t.Fatal("newest entry evicted")
	}
	if _, ok := m.lookup(macKey([]byte{2, 0, 0, 0, 0, 0})); ok {
		t.Fatal("oldest entry kept")
	}
	if m.evictions.Load() != 6 {
		t.Fatalf("evictions %d", m.evictions.Load())
	}
	if e := m.entries(); len(e) != 4 || e[0].MAC.String() != "02:00:00:00:00:06" {
		t.Fatalf("entries %v", e)
	}
}

func TestMACKnownNoAllocs(t *testing.T) {
	m := newMACTable(10*time.Minute, time.Second, 100)
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
	m := newMACTable(10*time.Minute, time.Second, 100)
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
	if n := len(*m.snap.Load()); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}
}

func BenchmarkMACLookup(b *testing.B) {
	m := newMACTable(10*time.Minute, time.Second, 100000)
	for i := range 1000 {
		m.learn(macKey([]byte{2, 0, 0, 0, byte(i >> 8), byte(i)}), 1, 0)
	}
	k := macKey([]byte{2, 0, 0, 0, 1, 7})
	var pend []macPending
	b.ReportAllocs()
	for b.Loop() {
		m.lookup(k)
		m.observe(k, 1, 0, &pend)
	}
}
