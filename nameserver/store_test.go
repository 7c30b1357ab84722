package nameserver

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
)

const (
	peerA mesh.PeerName = 0x0a0000000001
	peerB mesh.PeerName = 0x0a0000000002
	peerC mesh.PeerName = 0x0a0000000003
)

// fakeClock is a settable clock for stores and forwarders.
type fakeClock struct{ t time.Time }

func newFakeClock() *fakeClock               { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestStore(t testing.TB, self mesh.PeerName, clock *fakeClock) *Store {
	t.Helper()
	s, err := NewStore(StoreConfig{Self: self, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func mustAdd(t testing.TB, s *Store, name, addr, target string) *RecordSet {
	t.Helper()
	set, err := s.Add(name, ip(addr), target)
	if err != nil {
		t.Fatalf("Add(%s, %s): %v", name, addr, err)
	}
	return set
}

func lookup(s *Store, name string) []string {
	var out []string
	for _, a := range s.LookupName(nil, name) {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

func TestStoreAddLookup(t *testing.T) {
	s := newTestStore(t, peerA, newFakeClock())
	mustAdd(t, s, "Web.weft.local.", "10.32.0.1", "netns:c1")
	mustAdd(t, s, "web.weft.local.", "10.32.0.2", "netns:c2")
	mustAdd(t, s, "db.weft.local.", "10.32.0.1", "netns:c1")
	mustAdd(t, s, "WEB.weft.local.", "10.32.0.1", "netns:c3") // same name+addr, another target

	for _, name := range []string{"web.weft.local.", "WEB.WEFT.LOCAL.", "wEb.weft.local."} {
		if got, want := lookup(s, name), []string{"10.32.0.1", "10.32.0.2"}; !slices.Equal(got, want) {
			t.Errorf("LookupName(%s) = %v, want %v (distinct addresses)", name, got, want)
		}
	}
	names := s.LookupAddr(nil, ip("10.32.0.1"))
	slices.Sort(names)
	if want := []string{"Web.weft.local.", "db.weft.local."}; !slices.Equal(names, want) {
		t.Errorf("LookupAddr = %v, want %v (original case, distinct ignoring case)", names, want)
	}
	if got := lookup(s, "nope.weft.local."); got != nil {
		t.Errorf("unknown name gave %v", got)
	}
}

func TestStoreAddValidation(t *testing.T) {
	s := newTestStore(t, peerA, newFakeClock())
	for _, tc := range []struct{ name, addr, target string }{
		{"noDot.weft.local", "10.0.0.1", ""},
		{".", "10.0.0.1", ""},
		{"a..b.", "10.0.0.1", ""},
		{"ok.weft.local.", "::1", ""},
		{"ok.weft.local.", "0.0.0.0", ""},
		{"ok.weft.local.", "10.0.0.1", "has space"},
	} {
		if _, err := s.Add(tc.name, ip(tc.addr), tc.target); err == nil {
			t.Errorf("Add(%q, %s, %q) accepted", tc.name, tc.addr, tc.target)
		}
	}
}

func TestStoreAddIdempotentAndRevive(t *testing.T) {
	s := newTestStore(t, peerA, newFakeClock())
	if set := mustAdd(t, s, "x.weft.local.", "10.0.0.1", "t"); set.Len() != 1 || set.Records()[0].Version != 1 {
		t.Fatalf("first add: %v", set.Records())
	}
	if set := mustAdd(t, s, "x.weft.local.", "10.0.0.1", "t"); set.Len() != 0 {
		t.Fatalf("second add changed something: %v", set.Records())
	}
	rm := s.Remove(Filter{Name: "x.weft.local"})
	if rm.Len() != 1 || rm.Records()[0].Version != 2 || !rm.Records()[0].Tombstone {
		t.Fatalf("remove: %v", rm.Records())
	}
	set := mustAdd(t, s, "X.weft.local.", "10.0.0.1", "t")
	if r := set.Records(); len(r) != 1 || r[0].Version != 3 || r[0].Tombstone || r[0].Name != "X.weft.local." {
		t.Fatalf("revive: %v", r)
	}
}

func TestStoreRemoveFilter(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		filter Filter
		left   []string // names still live, "name addr target"
	}{
		{"by target", Filter{Target: "netns:c1"}, []string{"b 10.0.0.2 netns:c2", "b 10.0.0.3 netns:c2"}},
		{"by name any case", Filter{Name: "A.WEFT.LOCAL"}, []string{"b 10.0.0.2 netns:c2", "b 10.0.0.3 netns:c2"}},
		{"by addr", Filter{Addr: ip("10.0.0.2")}, []string{"a 10.0.0.1 netns:c1", "b 10.0.0.3 netns:c2"}},
		{"by name and addr", Filter{Name: "b.weft.local.", Addr: ip("10.0.0.3")}, []string{"a 10.0.0.1 netns:c1", "b 10.0.0.2 netns:c2"}},
		{"no match", Filter{Target: "netns:zz"}, []string{"a 10.0.0.1 netns:c1", "b 10.0.0.2 netns:c2", "b 10.0.0.3 netns:c2"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			s := newTestStore(t, peerA, newFakeClock())
			mustAdd(t, s, "a.weft.local.", "10.0.0.1", "netns:c1")
			mustAdd(t, s, "b.weft.local.", "10.0.0.2", "netns:c2")
			mustAdd(t, s, "b.weft.local.", "10.0.0.3", "netns:c2")
			s.Remove(tc.filter)
			var left []string
			for _, e := range s.Snapshot(false) {
				left = append(left, e.Name[:1]+" "+e.Address.String()+" "+e.Target)
			}
			if !slices.Equal(left, tc.left) {
				t.Errorf("left %v, want %v", left, tc.left)
			}
		})
	}
}

func TestStoreRemoveOnlyOwn(t *testing.T) {
	clock := newFakeClock()
	a, b := newTestStore(t, peerA, clock), newTestStore(t, peerB, clock)
	a.Merge(mustAdd(t, b, "b.weft.local.", "10.0.0.2", ""))
	if rm := a.Remove(Filter{}); rm.Len() != 0 {
		t.Fatalf("removed a record of another peer: %v", rm.Records())
	}
	if got := lookup(a, "b.weft.local."); len(got) != 1 {
		t.Fatalf("record of B gone from A: %v", got)
	}
}

func TestStoreMergeRules(t *testing.T) {
	base := Record{Name: "x.weft.local.", Addr: ip("10.0.0.9"), Owner: peerB, Target: "t", Version: 5}
	with := func(v uint64, tomb bool) Record { r := base; r.Version, r.Tombstone = v, tomb; return r }
	for _, tc := range []struct {
		desc     string
		held, in Record
		changed  bool
		live     bool
	}{
		{"higher version wins", with(5, false), with(6, true), true, false},
		{"lower version loses", with(5, true), with(4, false), false, false},
		{"equal version tombstone wins", with(5, false), with(5, true), true, false},
		{"equal version live loses to tombstone", with(5, true), with(5, false), false, false},
		{"same state is no change", with(5, false), with(5, false), false, true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			s := newTestStore(t, peerA, newFakeClock())
			s.Merge(NewRecordSet(tc.held))
			delta, reassert := s.Merge(NewRecordSet(tc.in))
			if (delta.Len() == 1) != tc.changed || reassert.Len() != 0 {
				t.Errorf("delta %v reassert %v, want changed=%v", delta.Records(), reassert.Records(), tc.changed)
			}
			if live := len(lookup(s, "x.weft.local.")) == 1; live != tc.live {
				t.Errorf("live = %v, want %v", live, tc.live)
			}
		})
	}
}

func TestStoreMergeUnknownTombstoneKept(t *testing.T) {
	s := newTestStore(t, peerA, newFakeClock())
	tomb := Record{Name: "x.weft.local.", Addr: ip("10.0.0.9"), Owner: peerB, Version: 3, Tombstone: true}
	if delta, _ := s.Merge(NewRecordSet(tomb)); delta.Len() != 1 {
		t.Fatal("tombstone of an unknown record not kept")
	}
	live := tomb
	live.Version, live.Tombstone = 2, false
	if delta, _ := s.Merge(NewRecordSet(live)); delta.Len() != 0 || len(lookup(s, "x.weft.local.")) != 0 {
		t.Fatal("an older live record resurrected a tombstone")
	}
}

func TestStoreKnownPeerFilter(t *testing.T) {
	s, err := NewStore(StoreConfig{Self: peerA, KnownPeer: func(p mesh.PeerName) bool { return p == peerB }})
	if err != nil {
		t.Fatal(err)
	}
	in := NewRecordSet(
		Record{Name: "b.weft.local.", Addr: ip("10.0.0.2"), Owner: peerB, Version: 1},
		Record{Name: "c.weft.local.", Addr: ip("10.0.0.3"), Owner: peerC, Version: 1},
	)
	delta, _ := s.Merge(in)
	if delta.Len() != 1 || len(lookup(s, "c.weft.local.")) != 0 {
		t.Fatalf("records of an unknown peer accepted: %v", delta.Records())
	}
}

func TestStoreTombstoneGC(t *testing.T) {
	clock := newFakeClock()
	s := newTestStore(t, peerA, clock)
	mustAdd(t, s, "x.weft.local.", "10.0.0.1", "")
	mustAdd(t, s, "y.weft.local.", "10.0.0.2", "")
	s.Remove(Filter{Name: "x.weft.local."})
	clock.Advance(DefaultTombstoneTTL - time.Second)
	if n := s.GC(); n != 0 {
		t.Fatalf("GC dropped %d before the TTL", n)
	}
	clock.Advance(time.Second)
	if n := s.GC(); n != 1 {
		t.Fatalf("GC dropped %d, want 1 tombstone", n)
	}
	if s.Len() != 1 || len(lookup(s, "y.weft.local.")) != 1 {
		t.Fatalf("live record lost: %v", s.Snapshot(true))
	}
}

func TestStorePeerGone(t *testing.T) {
	clock := newFakeClock()
	a, b, c := newTestStore(t, peerA, clock), newTestStore(t, peerB, clock), newTestStore(t, peerC, clock)
	mustAdd(t, a, "a.weft.local.", "10.0.0.1", "")
	a.Merge(mustAdd(t, b, "b.weft.local.", "10.0.0.2", ""))
	b.Remove(Filter{})
	a.Merge(b.Gossip())
	a.Merge(mustAdd(t, c, "c.weft.local.", "10.0.0.3", ""))
	if n := a.PeerGone(peerB); n != 1 {
		t.Fatalf("PeerGone(B) dropped %d, want 1 (its tombstone)", n)
	}
	if n := a.PeerGone(peerA); n != 0 {
		t.Fatal("PeerGone(self) dropped our records")
	}
	if got := a.Snapshot(true); len(got) != 2 {
		t.Fatalf("left %v", got)
	}
	// B comes back and gossips again: its records return.
	mustAdd(t, b, "b2.weft.local.", "10.0.0.4", "")
	a.Merge(b.Gossip())
	if len(lookup(a, "b2.weft.local.")) != 1 {
		t.Fatal("records of a returning peer not accepted")
	}
}

func TestStoreRestartReassert(t *testing.T) {
	clock := newFakeClock()
	a, b := newTestStore(t, peerA, clock), newTestStore(t, peerB, clock)
	mustAdd(t, a, "keep.weft.local.", "10.0.0.1", "netns:c1")
	a.Remove(Filter{})
	mustAdd(t, a, "keep.weft.local.", "10.0.0.1", "netns:c1") // v3
	mustAdd(t, a, "stale.weft.local.", "10.0.0.2", "netns:c2")
	mustAdd(t, a, "gone.weft.local.", "10.0.0.3", "netns:c3")
	a.Remove(Filter{Target: "netns:c3"}) // v2 tombstone
	b.Merge(a.Gossip())

	// A restarts: it only remembers keep (persisted), at version 1.
	a2 := newTestStore(t, peerA, clock)
	mustAdd(t, a2, "keep.weft.local.", "10.0.0.1", "netns:c1")

	delta, reassert := a2.Merge(b.Gossip())
	got := map[string]Record{}
	for _, r := range reassert.Records() {
		got[r.Name] = r
	}
	if r := got["keep.weft.local."]; r.Version != 4 || r.Tombstone {
		t.Errorf("keep re-asserted as %v, want live v4", r)
	}
	if r := got["stale.weft.local."]; r.Version != 2 || !r.Tombstone {
		t.Errorf("stale re-asserted as %v, want tombstone v2", r)
	}
	if _, ok := got["gone.weft.local."]; ok || delta.Len() != 1 {
		t.Errorf("forgotten tombstone: reassert %v delta %v", reassert.Records(), delta.Records())
	}
	b.Merge(reassert)
	if got := lookup(b, "keep.weft.local."); len(got) != 1 {
		t.Errorf("keep not live on B: %v", got)
	}
	if got := lookup(b, "stale.weft.local."); len(got) != 0 {
		t.Errorf("stale entry still live on B: %v", got)
	}
	// Converged: nothing more to say in either direction.
	if d, r := a2.Merge(b.Gossip()); d.Len()+r.Len() != 0 {
		t.Errorf("not converged: delta %v reassert %v", d.Records(), r.Records())
	}
	if d, r := b.Merge(a2.Gossip()); d.Len()+r.Len() != 0 {
		t.Errorf("not converged: delta %v reassert %v", d.Records(), r.Records())
	}
}

func TestStoreOlderOwnVersionReasserted(t *testing.T) {
	clock := newFakeClock()
	a, b := newTestStore(t, peerA, clock), newTestStore(t, peerB, clock)
	b.Merge(mustAdd(t, a, "x.weft.local.", "10.0.0.1", ""))
	a.Remove(Filter{}) // B missed this broadcast
	_, reassert := a.Merge(b.Gossip())
	if r := reassert.Records(); len(r) != 1 || !r[0].Tombstone || r[0].Version != 2 {
		t.Fatalf("reassert %v, want our tombstone v2 unchanged", r)
	}
}

func TestStoreOwn(t *testing.T) {
	s := newTestStore(t, peerA, newFakeClock())
	mustAdd(t, s, "x.weft.local.", "10.0.0.1", "")
	mustAdd(t, s, "y.weft.local.", "10.0.0.2", "")
	s.Remove(Filter{Name: "y.weft.local."})
	s.Merge(NewRecordSet(Record{Name: "z.weft.local.", Addr: ip("10.0.0.3"), Owner: peerB, Version: 1}))
	own := s.Own()
	if len(own) != 1 || own[0].Name != "x.weft.local." {
		t.Fatalf("Own() = %v", own)
	}
}
