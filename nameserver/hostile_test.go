package nameserver

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/weftnet/weft/mesh"
)

// Hostile updates (issue 16): a member, Mallory, speaks for peer A in the
// gossip it sends. In a router, records are signed by their owner and a
// forged one is refused (signed_test.go); these stores check no signatures,
// and show what holds even so: A stays the authority for its records and
// no version can be pinned.

// fromWire builds a hostile update as Mallory would send it: records
// encoded with the documented wire format and decoded by the receiver.
func fromWire(t *testing.T, recs ...Record) *RecordSet {
	t.Helper()
	set := NewRecordSet()
	for _, m := range NewRecordSet(recs...).Encode() {
		part, err := DecodeRecordSet(m)
		if err != nil {
			t.Fatalf("hostile update does not decode: %v", err)
		}
		set.Merge(part)
	}
	return set
}

// victim returns A's store holding x.weft.local. and B's store that learned
// it, and the record as gossiped.
func victim(t *testing.T, clock *fakeClock) (a, b *Store, x Record) {
	t.Helper()
	a, b = newTestStore(t, peerA, clock), newTestStore(t, peerB, clock)
	set := mustAdd(t, a, "x.weft.local.", "10.32.0.1", "netns:c1")
	b.Merge(set)
	return a, b, set.Records()[0]
}

// TestHostileVersionAboveCeiling: a tombstone for A's record at a version
// above the ceiling (2^32-1 pinned records for good with 32-bit versions)
// is ignored by every store, A's included.
func TestHostileVersionAboveCeiling(t *testing.T) {
	clock := newFakeClock()
	a, b, x := victim(t, clock)
	for _, v := range []uint64{math.MaxUint32 * 1000, MaxVersion} {
		forged := x
		forged.Version, forged.Tombstone = v, true
		hostile := fromWire(t, forged)
		if delta, _ := b.Merge(hostile); delta.Len() != 0 || len(lookup(b, "x.weft.local.")) != 1 {
			t.Fatalf("B took the forged tombstone v%d: delta %v", v, delta.Records())
		}
		if delta, reassert := a.Merge(hostile); delta.Len()+reassert.Len() != 0 || len(a.Own()) != 1 {
			t.Fatalf("A took the forged tombstone v%d: delta %v reassert %v", v, delta.Records(), reassert.Records())
		}
	}
}

// TestHostileVersionNotPinned: a forged tombstone at the highest version B
// accepts deletes A's name on B for a moment only: A answers one version
// above, which B accepts a millisecond later, and A can still change its
// record afterwards. A restarted A gets its name back the same way.
func TestHostileVersionNotPinned(t *testing.T) {
	clock := newFakeClock()
	a, b, x := victim(t, clock)
	forged := x
	forged.Version, forged.Tombstone = VersionCeiling(clock.Now(), DefaultVersionAhead), true
	hostile := fromWire(t, forged)
	if delta, _ := b.Merge(hostile); delta.Len() != 1 {
		t.Fatalf("B refused a version at its ceiling: %v", delta.Records())
	}
	if got := lookup(b, "x.weft.local."); len(got) != 0 {
		t.Fatalf("the forged tombstone did not apply on B: %v", got)
	}

	_, reassert := a.Merge(hostile)
	r := reassert.Records()
	if len(r) != 1 || r[0].Tombstone || r[0].Version != forged.Version+1 {
		t.Fatalf("A re-asserted %v, want its live record at v%d", r, forged.Version+1)
	}
	if len(a.Own()) != 1 {
		t.Fatalf("A's own record changed: %v", a.Own())
	}
	clock.Advance(time.Millisecond)
	b.Merge(reassert)
	if got := lookup(b, "x.weft.local."); len(got) != 1 {
		t.Fatalf("A's re-assertion did not restore its name on B: %v", got)
	}
	// A can still remove and re-add its name: nothing is exhausted.
	b.Merge(a.Remove(Filter{Name: "x.weft.local."}))
	b.Merge(mustAdd(t, a, "x.weft.local.", "10.32.0.1", "netns:c1"))
	if got := lookup(b, "x.weft.local."); len(got) != 1 {
		t.Fatalf("A's later changes do not reach B: %v", got)
	}

	// Mallory pins the record again, at the new ceiling, and A restarts:
	// the restarted A, at version 1, still wins.
	forged.Version = VersionCeiling(clock.Now(), DefaultVersionAhead)
	b.Merge(fromWire(t, forged))
	a2 := newTestStore(t, peerA, clock)
	mustAdd(t, a2, "x.weft.local.", "10.32.0.1", "netns:c1")
	_, reassert = a2.Merge(b.Gossip())
	clock.Advance(time.Millisecond)
	b.Merge(reassert)
	if got := lookup(b, "x.weft.local."); len(got) != 1 {
		t.Fatalf("a restarted A did not get its name back: %v", got)
	}
	if d, r := a2.Merge(b.Gossip()); d.Len()+r.Len() != 0 {
		t.Fatalf("not converged: delta %v reassert %v", d.Records(), r.Records())
	}
}

// TestHostileRecordClaimingOurs: a live record that claims to be A's but
// that A never made (Mallory pointing A's name at her address) is
// tombstoned by A everywhere, even at the highest accepted version.
func TestHostileRecordClaimingOurs(t *testing.T) {
	clock := newFakeClock()
	a, b, x := victim(t, clock)
	forged := x
	forged.Addr = ip("10.32.0.66")
	forged.Version = VersionCeiling(clock.Now(), DefaultVersionAhead)
	hostile := fromWire(t, forged)
	b.Merge(hostile)
	if got := lookup(b, "x.weft.local."); len(got) != 2 {
		t.Fatalf("B holds %v, want both addresses before A answers", got)
	}
	delta, reassert := a.Merge(hostile)
	if got := lookup(a, "x.weft.local."); len(got) != 1 || got[0] != "10.32.0.1" {
		t.Fatalf("A answers %v for its own name", got)
	}
	if delta.Len() != 0 || reassert.Len() != 1 || !reassert.Records()[0].Tombstone {
		t.Fatalf("A: delta %v reassert %v, want the forged record tombstoned", delta.Records(), reassert.Records())
	}
	clock.Advance(time.Millisecond)
	b.Merge(reassert)
	if got := lookup(b, "x.weft.local."); len(got) != 1 || got[0] != "10.32.0.1" {
		t.Fatalf("B answers %v after A's answer", got)
	}
}

func TestVersionCeiling(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	for _, tc := range []struct {
		now   time.Time
		ahead time.Duration
		want  uint64
	}{
		{now, time.Hour, 1_700_000_000_000 + 3_600_000},
		{time.UnixMilli(-5000), time.Second, 1},
		{time.Unix(0, 0), 0, 1},
		{time.Unix(math.MaxInt64/1000/1000, 0), 0, uint64(math.MaxInt64/1000/1000) * 1000}, // far below MaxVersion
	} {
		if got := VersionCeiling(tc.now, tc.ahead); got != tc.want {
			t.Errorf("VersionCeiling(%v, %v) = %d, want %d", tc.now, tc.ahead, got, tc.want)
		}
	}
}

// TestHostilePTRClaim: Mallory (B) names A's container address after
// herself. A's server, which answers A's containers, gives only A's name
// for it; a third store, which cannot tell who holds the address, answers
// both (the limit documented in docs/dns.md).
func TestHostilePTRClaim(t *testing.T) {
	clock := newFakeClock()
	a, _, x := victim(t, clock)
	c := newTestStore(t, peerC, clock)
	c.Merge(a.Gossip())
	claim := Record{Name: "evil.weft.local.", Addr: x.Addr, Owner: peerB, Version: 1}
	a.Merge(fromWire(t, claim))
	c.Merge(fromWire(t, claim))
	if got := a.LookupAddr(nil, x.Addr); len(got) != 1 || got[0] != x.Name {
		t.Fatalf("A answers PTR %s with %v, want only %s", x.Addr, got, x.Name)
	}
	if got := c.LookupAddr(nil, x.Addr); len(got) != 2 {
		t.Fatalf("third store answers %v", got)
	}
	// An address nobody local holds is answered from every record.
	other := Record{Name: "b.weft.local.", Addr: ip("10.32.0.9"), Owner: peerB, Version: 1}
	a.Merge(fromWire(t, other))
	if got := a.LookupAddr(nil, other.Addr); len(got) != 1 {
		t.Fatalf("A answers PTR %s with %v", other.Addr, got)
	}
}

func TestOwnedOnlyBy(t *testing.T) {
	mine := Record{Name: "a.weft.local.", Addr: ip("10.0.0.1"), Owner: peerA, Version: 1}
	theirs := Record{Name: "b.weft.local.", Addr: ip("10.0.0.2"), Owner: peerB, Version: 1}
	var nilSet *RecordSet
	if !nilSet.OwnedOnlyBy(peerA) || !NewRecordSet(mine).OwnedOnlyBy(peerA) || NewRecordSet(mine, theirs).OwnedOnlyBy(peerA) {
		t.Fatal("OwnedOnlyBy wrong")
	}
}

// TestStoreConvergenceWithForger runs random adds and removes on three
// stores while Mallory injects forged updates in their names (tombstones and
// changes at the version ceiling or just above the current version, and
// records they never made), delivered out of order. Once she stops and the
// stores have gossiped, all hold the same records, and each peer's live
// records everywhere are exactly the ones it holds itself.
func TestStoreConvergenceWithForger(t *testing.T) {
	for seed := range uint64(30) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 16))
			clock := newFakeClock()
			peers := []mesh.PeerName{peerA, peerB, peerC}
			stores := make([]*Store, len(peers))
			for i, p := range peers {
				stores[i] = newTestStore(t, p, clock)
			}
			pending := make([][]*RecordSet, len(stores))
			broadcast := func(from int, set *RecordSet) {
				for j := range stores {
					if j != from && set.Len() > 0 {
						pending[j] = append(pending[j], set)
					}
				}
			}
			deliver := func(i int) {
				clock.Advance(time.Millisecond)
				k := rng.IntN(len(pending[i]))
				msg := pending[i][k]
				pending[i] = slices.Delete(pending[i], k, k+1)
				for _, b := range msg.Encode() {
					set, err := DecodeRecordSet(b)
					if err != nil {
						t.Fatal(err)
					}
					delta, reassert := stores[i].Merge(set)
					broadcast(i, delta)
					broadcast(i, reassert)
				}
			}
			forge := func() {
				known := stores[rng.IntN(len(stores))].Gossip().Records()
				var r Record
				if len(known) == 0 || rng.IntN(4) == 0 {
					r = Record{Name: fmt.Sprintf("n%d.weft.local.", rng.IntN(4)), Addr: ip("10.0.0.66"),
						Owner: peers[rng.IntN(len(peers))], Target: "t", Version: 1}
				} else {
					r = known[rng.IntN(len(known))]
				}
				switch rng.IntN(3) {
				case 0:
					r.Version = VersionCeiling(clock.Now(), DefaultVersionAhead)
				case 1:
					r.Version += 1 + uint64(rng.IntN(1000))
				default:
					r.Version = MaxVersion
				}
				r.Tombstone = rng.IntN(2) == 0
				j := rng.IntN(len(stores))
				pending[j] = append(pending[j], fromWire(t, r))
			}
			for range 300 {
				i := rng.IntN(len(stores))
				name := fmt.Sprintf("n%d.weft.local.", rng.IntN(4))
				switch op := rng.IntN(10); {
				case op < 3:
					set, err := stores[i].Add(name, ip(fmt.Sprintf("10.0.0.%d", 1+rng.IntN(3))), "t")
					if err != nil {
						t.Fatal(err)
					}
					broadcast(i, set)
				case op < 5:
					broadcast(i, stores[i].Remove(Filter{Name: name}))
				case op < 7:
					forge()
				case op < 8:
					if j := rng.IntN(len(stores)); j != i {
						pending[j] = append(pending[j], stores[i].Gossip())
					}
				default:
					if len(pending[i]) > 0 {
						deliver(i)
					}
				}
			}
			drain := func() {
				for busy := true; busy; {
					busy = false
					for i := range stores {
						for len(pending[i]) > 0 {
							busy = true
							deliver(i)
						}
					}
				}
			}
			drain()
			for round := 0; ; round++ {
				if round == 10 {
					t.Fatal("still changing after 10 rounds of full gossip")
				}
				clock.Advance(time.Millisecond)
				changed := false
				for i := range stores {
					for j := range stores {
						if i != j {
							delta, reassert := stores[j].Merge(stores[i].Gossip())
							changed = changed || delta.Len() > 0 || reassert.Len() > 0
							broadcast(j, reassert)
						}
					}
				}
				drain()
				if !changed {
					break
				}
			}
			want := stores[0].Snapshot(true)
			for i, s := range stores[1:] {
				if got := s.Snapshot(true); !slices.Equal(got, want) {
					t.Fatalf("store %d differs from store 0:\n%v\n%v", i+1, got, want)
				}
			}
			for i, owner := range stores {
				var live []string
				for _, e := range stores[(i+1)%len(stores)].Snapshot(false) {
					if e.Owner == peers[i].String() {
						live = append(live, e.Name+" "+e.Address.String())
					}
				}
				var own []string
				for _, r := range owner.Own() {
					own = append(own, r.Name+" "+r.Addr.String())
				}
				if !slices.Equal(live, own) {
					t.Fatalf("peer %d's live records elsewhere %v, its own %v", i, live, own)
				}
			}
		})
	}
}

// TestHandlerHostilePTR: the same PTR claim as TestHostilePTRClaim, asked
// of the DNS handler of A, which holds the address.
func TestHandlerHostilePTR(t *testing.T) {
	h, s := newTestHandler(t, HandlerConfig{Upstream: &fakeUpstream{}})
	mustAdd(t, s, "c1.weft.local.", "10.32.0.78", "netns:c1")
	s.Merge(fromWire(t, Record{Name: "evil.weft.local.", Addr: ip("10.32.0.78"), Owner: peerB, Version: 1}))
	resp := serve(t, h, &fakeWriter{}, query("78.0.32.10.in-addr.arpa.", dns.TypePTR))
	if len(resp.Answer) != 1 || resp.Answer[0].(*dns.PTR).Ptr != "c1.weft.local." {
		t.Fatalf("PTR answer %v, want only c1.weft.local.", resp.Answer)
	}
}
