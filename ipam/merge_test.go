package ipam

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
)

// TestRestart: a router restarted from its persister keeps its addresses
// and its ranges, and the same ident gets the same address.
func TestRestart(t *testing.T) {
	n := newTestNet(t, "10.32.0.0/12")
	r1, r2 := n.add(1, 0), n.add(2, 0)
	held := map[string]netip.Addr{}
	for i := range 4 {
		held[fmt.Sprint("a", i)] = r1.mustAlloc(t, fmt.Sprint("a", i))
		held[fmt.Sprint("b", i)] = r2.mustAlloc(t, fmt.Sprint("b", i))
	}
	r2.a.Release("b3")
	delete(held, "b3")
	n.settleAll()
	before := r2.ringOf(n.rng)
	r2 = n.restart(2)
	if after := r2.ringOf(n.rng); after.seed != before.seed || len(after.owned(2)) == 0 {
		t.Fatalf("the restarted router lost its ring:\nbefore %v\nafter  %v", ringString(before), ringString(after))
	}
	for i := range 3 {
		id := fmt.Sprint("b", i)
		if got := r2.a.Addresses(id); len(got) != 1 || got[0] != held[id] {
			t.Errorf("%s after restart: %v, want %s", id, got, held[id])
		}
		if p, err := r2.alloc(id, ""); err != nil || p.Addr() != held[id] {
			t.Errorf("allocate %s again: %s %v", id, p, err)
		}
	}
	if got := r2.a.Addresses("b3"); len(got) != 0 {
		t.Errorf("a released address came back: %v", got)
	}
	n.settleAll()
	n.checkConverged(t, n.rng)
	// A restart while cut off from every peer still allocates from its own
	// ranges, without asking anyone.
	n.partition(map[mesh.PeerName]int{2: 1})
	r2 = n.restart(2)
	fresh := r2.mustAlloc(t, "new")
	for id, a := range held {
		if a == fresh {
			t.Fatalf("a fresh address after restart is %s's", id)
		}
	}
	n.heal()
	n.settleAll()
	n.checkConverged(t, n.rng)
	n.checkNoDuplicates(t)
	// Both restarted together.
	n.restart(1)
	n.restart(2)
	n.settleAll()
	n.checkConverged(t, n.rng)
	if got := n.node(1).a.Addresses("a0"); len(got) != 1 || got[0] != held["a0"] {
		t.Errorf("a0 after both restarted: %v", got)
	}
}

// TestTakeOverTwice: two routers run rmpeer for the same dead peer, each
// cut off from the other; once they meet they agree on one owner of each
// range. Without allocations meanwhile nothing is held twice; when both
// filled the taken-over space while apart, each address held on both is
// reported as a conflict by the router that lost the range, and nothing
// handed out afterwards collides.
func TestTakeOverTwice(t *testing.T) {
	for _, allocBefore := range []bool{false, true} {
		t.Run(fmt.Sprint("allocate before meeting ", allocBefore), func(t *testing.T) {
			n := newTestNet(t, "10.9.0.0/26")
			r1, r2, r3 := n.add(1, 0), n.add(2, 0), n.add(3, 0)
			r3.mustAlloc(t, "c3") // 1 seeds, 3 borrows
			r2.mustAlloc(t, "c2")
			n.settleAll()
			n.kill(3)
			n.partition(map[mesh.PeerName]int{1: 1, 2: 2})
			n1, err1 := r1.a.TakeOver(3)
			n2, err2 := r2.a.TakeOver(3)
			if err1 != nil || err2 != nil || n1 != n2 || n1 == 0 {
				t.Fatalf("TakeOver: %d %v, %d %v", n1, err1, n2, err2)
			}
			if allocBefore {
				// Each fills its own space and what it took over.
				for i := range 40 {
					for _, nd := range []*testNode{r1, r2} {
						if _, err := nd.alloc(fmt.Sprint(nd.name, "-", i), ""); err != nil && !errors.Is(err, ErrNoSpace) && !errors.Is(err, ErrUnreachableSpace) {
							t.Fatal(err)
						}
					}
				}
			}
			n.heal()
			n.settleAll()
			n.checkConverged(t, n.rng)
			r := r1.ringOf(n.rng)
			for i, e := range r.ents {
				if e.owner == 3 {
					t.Fatalf("range %s still owned by the removed peer", r.span(i))
				}
			}
			// A second rmpeer after they met finds nothing.
			if _, err := r2.a.TakeOver(3); !errors.Is(err, ErrUnknownPeer) {
				t.Errorf("rmpeer again: %v", err)
			}
			dups := 0
			conflicts := map[netip.Addr]bool{}
			for _, nd := range []*testNode{r1, r2} {
				for _, c := range nd.a.Status().Pools[0].Conflicts {
					conflicts[c.Addr] = true
				}
			}
			for a, hs := range n.held() {
				if len(hs) > 1 {
					dups++
					if !allocBefore || !conflicts[a] {
						t.Errorf("%s held by %v (conflict reported: %v)", a, hs, conflicts[a])
					}
				}
			}
			if allocBefore && dups == 0 {
				t.Error("no address was handed out on both sides: the test shows nothing")
			}
			heldNow := n.held()
			for i := range 5 {
				for _, nd := range []*testNode{r1, r2} {
					p, err := nd.alloc(fmt.Sprint("after", nd.name, "-", i), "")
					if errors.Is(err, ErrNoSpace) {
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					if h, ok := heldNow[p.Addr()]; ok {
						t.Fatalf("%s handed out again, held by %v", p.Addr(), h)
					}
					heldNow[p.Addr()] = []string{"new"}
				}
			}
			n.settleAll()
			n.checkConverged(t, n.rng)
		})
	}
}

// TestSeparateSeeds: two halves of a mesh seed the range apart, hand out
// addresses (the same ones), then meet. Both keep working, the younger
// side reports the addresses held on both sides as conflicts, nothing
// handed out after the meeting collides with an address held anywhere,
// and the meeting costs a bounded number of messages.
func TestSeparateSeeds(t *testing.T) {
	n := newTestNet(t, "10.9.0.0/24")
	a1, a2 := n.add(1, 1), n.add(2, 1) // the older half
	b3, b4 := n.add(3, 2), n.add(4, 2) // the younger half
	for i := range 4 {
		a1.mustAlloc(t, fmt.Sprint("a1-", i))
		a2.mustAlloc(t, fmt.Sprint("a2-", i))
	}
	n.settleAll()
	n.clock.advance(time.Second)
	for i := range 4 {
		b4.mustAlloc(t, fmt.Sprint("b4-", i))
		b3.mustAlloc(t, fmt.Sprint("b3-", i))
	}
	n.settleAll()
	older, younger := a1.ringOf(n.rng).seed, b3.ringOf(n.rng).seed
	if older == younger || !older.olderThan(younger) {
		t.Fatalf("seeds %+v %+v", older, younger)
	}
	// Addresses held on both sides before they meet.
	both := map[netip.Addr]bool{}
	hs := n.held()
	for a, h := range hs {
		if len(h) > 1 {
			both[a] = true
		}
	}
	if len(both) == 0 {
		t.Fatal("the halves share no address: the test shows nothing")
	}

	before := n.statsNow()
	n.heal()
	n.settle()
	meeting := n.statsNow()
	n.settleAll()
	after := n.statsNow()
	t.Logf("meeting: %d messages (%d bytes) to settle, %d more after the periodic work", meeting.msgs-before.msgs, meeting.bytes-before.bytes, after.msgs-meeting.msgs)
	if m := after.msgs - before.msgs; m > 400 {
		t.Errorf("the meeting of two halves of 2 routers cost %d messages", m)
	}

	// Every router now has the older ring.
	for _, nd := range n.live() {
		if s := nd.ringOf(n.rng).seed; s != older {
			t.Errorf("router %v has seed %+v, want the older %+v", nd.name, s, older)
		}
	}
	// The younger side reports each address held on both sides.
	var conflicts []Conflict
	for _, nd := range []*testNode{b3, b4} {
		st := nd.a.Status()
		conflicts = append(conflicts, st.Pools[0].Conflicts...)
		if len(st.Pools[0].Conflicts) > 0 && !strings.Contains(st.State, "conflict") {
			t.Errorf("router %v state does not mention its conflicts: %q", nd.name, st.State)
		}
	}
	if len(conflicts) != len(both) {
		t.Errorf("%d conflicts reported, %d addresses held on both sides: %+v", len(conflicts), len(both), conflicts)
	}
	for _, c := range conflicts {
		if !both[c.Addr] || c.Holder == "" || c.Ident == "" || (c.Peer != 1 && c.Peer != 2) {
			t.Errorf("conflict %+v", c)
		}
	}
	for _, nd := range []*testNode{a1, a2} {
		if st := nd.a.Status(); len(st.Pools[0].Conflicts) != 0 {
			t.Errorf("the older side reports conflicts: %+v", st.Pools[0].Conflicts)
		}
	}

	// Both sides keep working, before and after the quarantine ends, and
	// nothing new collides with anything held.
	heldNow := n.held()
	for round := range 2 {
		for _, nd := range n.live() {
			for i := range 3 {
				id := fmt.Sprintf("new%d-%v-%d", round, nd.name, i)
				p, err := nd.alloc(id, "")
				if err != nil {
					t.Fatalf("router %v after the meeting: %v", nd.name, err)
				}
				if h, ok := heldNow[p.Addr()]; ok {
					t.Fatalf("%s given to %s on %v, but held by %v", p.Addr(), id, nd.name, h)
				}
				heldNow[p.Addr()] = []string{id}
			}
		}
		n.settleAll()
		n.clock.advance(2 * n.quarantine)
	}
	// Conflicts resolve when one holder lets go.
	for _, c := range conflicts {
		for _, nd := range n.live() {
			nd.a.Free(c.Holder, c.Addr)
		}
	}
	n.settleAll()
	n.checkConverged(t, n.rng)
	n.checkNoDuplicates(t)
	for _, nd := range []*testNode{b3, b4} {
		if st := nd.a.Status(); len(st.Pools[0].Conflicts) != 0 {
			t.Errorf("router %v still reports %+v", nd.name, st.Pools[0].Conflicts)
		}
	}
}

// TestClaim: a claim of a free address owned by a peer is granted; the
// claimer then owns it; claims of addresses in the range's own reserved
// places still work.
func TestClaim(t *testing.T) {
	n := newTestNet(t, "10.9.0.0/24")
	r1, r2 := n.add(1, 0), n.add(2, 0)
	r1.mustAlloc(t, "seed")
	n.settleAll()
	want := netip.MustParseAddr("10.9.0.77")
	if rr := r2.ringOf(n.rng); rr.owner(a2u(want)) != 1 {
		t.Fatalf("setup: %v", ringString(rr))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if ok, err := r2.a.Claim(ctx, "c1", want); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if got := r2.a.Addresses("c1"); len(got) != 1 || got[0] != want {
		t.Fatalf("Addresses = %v", got)
	}
	n.settleAll()
	n.checkConverged(t, n.rng)
	if _, err := r1.a.Claim(ctx, "c2", want); !errors.Is(err, ErrAddressTaken) || !strings.Contains(err.Error(), "c1") {
		t.Errorf("claim of the claimed address: %v", err)
	}
	// Many concurrent claims and allocations on the claimer never clash.
	errs := make(chan error, 40)
	for i := range 20 {
		go func() {
			_, err := r2.a.Claim(ctx, fmt.Sprint("k", i), netip.AddrFrom4([4]byte{10, 9, 0, byte(100 + i)}))
			errs <- err
		}()
		go func() {
			_, err := r2.alloc(fmt.Sprint("m", i), "")
			errs <- err
		}()
	}
	for range 40 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	n.settleAll()
	n.checkConverged(t, n.rng)
	n.checkNoDuplicates(t)
}

// TestHandOver: a router that leaves gives its ranges to a peer; without
// a reachable peer it says so.
func TestHandOver(t *testing.T) {
	n := newTestNet(t, "10.9.0.0/24")
	r1, r2, r3 := n.add(1, 0), n.add(2, 0), n.add(3, 0)
	r2.mustAlloc(t, "c2")
	r3.mustAlloc(t, "c3")
	n.settleAll()
	if err := n.leave(2); err != nil {
		t.Fatal(err)
	}
	n.settleAll()
	n.checkConverged(t, n.rng)
	for _, nd := range []*testNode{r1, r3} {
		if o := nd.a.Owners(); len(o) != 2 || o[0] != 1 || o[1] != 3 {
			t.Errorf("owners on %v after 2 left: %v", nd.name, o)
		}
	}
	n.partition(map[mesh.PeerName]int{3: 1})
	if err := r3.a.HandOver(); !errors.Is(err, ErrNoHeir) {
		t.Errorf("hand-over with nobody reachable: %v", err)
	}
}

// TestSeparateSeedsRandom: halves of random sizes seed apart, allocate,
// release and borrow, then meet while allocations run on both sides.
// After the meeting no address is held twice unless it was held on both
// sides before (each such one reported as a conflict), every router
// keeps allocating, and the meeting costs a bounded number of messages.
func TestSeparateSeedsRandom(t *testing.T) {
	rounds := 20
	if raceEnabled {
		rounds = 6
	}
	for round := range rounds {
		seed := uint64(round) + 100
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, 1))
			n := newTestNet(t, "10.9.0.0/24")
			ka, kb := 1+rnd.IntN(5), 1+rnd.IntN(5)
			var sideA, sideB []*testNode
			for i := range ka + kb {
				if i < ka {
					sideA = append(sideA, n.add(mesh.PeerName(i+1), 1))
				} else {
					sideB = append(sideB, n.add(mesh.PeerName(i+1), 2))
				}
			}
			// The younger side may have the lower names: age decides.
			if rnd.IntN(2) == 0 {
				sideA, sideB = sideB, sideA
			}
			ids := 0
			fill := func(side []*testNode, count int) {
				for range count {
					nd := side[rnd.IntN(len(side))]
					ids++
					if _, err := nd.alloc(fmt.Sprint("t", ids), ""); err != nil && !errors.Is(err, ErrNoSpace) {
						t.Fatal(err)
					}
					if rnd.IntN(4) == 0 {
						nd.a.Release(fmt.Sprint("t", ids-rnd.IntN(3)))
					}
				}
			}
			t.Logf("older side %v, younger side %v", names(sideA), names(sideB))
			fill(sideA, 5+rnd.IntN(60))
			n.settleAll()
			n.clock.advance(time.Second)
			fill(sideB, 5+rnd.IntN(60))
			n.settleAll()
			before := map[netip.Addr]bool{}
			for a, hs := range n.held() {
				if len(hs) > 1 {
					before[a] = true
				}
			}

			start := n.statsNow()
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			// Allocations that start before their router heard from the
			// other side may collide (they do not know of it yet).
			n.mu.Lock()
			n.heard = map[[2]mesh.PeerName]bool{}
			n.mu.Unlock()
			var mu sync.Mutex
			unaware := map[string]bool{}
			knows := func(nd *testNode) bool {
				other := sideB
				if slices.Contains(sideB, nd) {
					other = sideA
				}
				for _, o := range other {
					if n.hasHeard(nd.name, o.name) {
						return true
					}
				}
				return false
			}
			n.heal()
			for i := range 6 {
				nd := append(sideA, sideB...)[rnd.IntN(ka+kb)]
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprint("meet", i)
					if !knows(nd) {
						mu.Lock()
						unaware[fmt.Sprintf("%v/%s", uint64(nd.name), id)] = true
						mu.Unlock()
					}
					if _, err := nd.alloc(id, ""); err != nil && !errors.Is(err, ErrNoSpace) {
						errs <- fmt.Errorf("router %v during the meeting: %w", nd.name, err)
					}
				}()
			}
			wg.Wait()
			n.settleAll()
			met := n.statsNow()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			held := 0
			for _, nd := range n.live() {
				held += int(nd.a.Status().Pools[0].Held)
			}
			routers := ka + kb
			if m := met.msgs - start.msgs; m > 20*routers*routers+20*held {
				t.Errorf("the meeting of %d and %d routers holding %d addresses cost %d messages", ka, kb, held, m)
			}
			n.clock.advance(2 * n.quarantine)
			n.settleAll()
			for _, nd := range n.live() {
				for i := range 3 {
					if _, err := nd.alloc(fmt.Sprint("after", nd.name, "-", i), ""); err != nil && !errors.Is(err, ErrNoSpace) {
						t.Fatalf("router %v after the meeting: %v", nd.name, err)
					}
				}
			}
			n.settleAll()
			n.checkConverged(t, n.rng)
			conflicts := map[netip.Addr]int{}
			for _, nd := range n.live() {
				for _, c := range nd.a.Status().Pools[0].Conflicts {
					conflicts[c.Addr]++
				}
			}
			for a, hs := range n.held() {
				if len(hs) > 1 && !before[a] && !slices.ContainsFunc(hs, func(h string) bool { return unaware[h] }) {
					t.Errorf("%s handed out again after the meeting: %v", a, hs)
				}
				if len(hs) > 1 && conflicts[a] != 1 {
					t.Errorf("%s held by %v is reported %d times", a, hs, conflicts[a])
				}
			}
			t.Logf("%d+%d routers, %d held, %d on both sides, meeting cost %d messages", ka, kb, held, len(before), met.msgs-start.msgs)
		})
	}
}

func names(nodes []*testNode) []uint64 {
	var out []uint64
	for _, nd := range nodes {
		out = append(out, uint64(nd.name))
	}
	return out
}

// TestTakeOverLearnsLater: rmpeer on a router that had not heard of all
// of the dead peer's ranges (it was cut off when the peer got them) takes
// over the rest as it learns of them; a removed peer that comes back is
// no longer taken from.
func TestTakeOverLearnsLater(t *testing.T) {
	n := newTestNet(t, "10.9.0.0/24")
	r1, r2, r3, r4 := n.add(1, 0), n.add(2, 0), n.add(3, 0), n.add(4, 0)
	for _, nd := range []*testNode{r2, r3, r4} {
		nd.mustAlloc(t, "a")
	}
	n.settleAll()
	n.partition(map[mesh.PeerName]int{1: 1})
	// Router 4 fills its range and borrows more from 2 and 3, unheard by 1.
	for i := range 40 {
		r4.mustAlloc(t, fmt.Sprint("b", i))
	}
	r2.mustAlloc(t, "c")
	n.settleAll()
	r1ring := r1.ringOf(n.rng)
	known := len(r1ring.owned(4))
	if got := r2.ringOf(n.rng); len(got.owned(4)) <= known {
		t.Fatalf("setup: router 4 got no range unknown to router 1: %v", ringString(got))
	}
	n.kill(4)
	if _, err := r1.a.TakeOver(4); err != nil {
		t.Fatal(err)
	}
	n.heal()
	n.settleAll()
	n.checkConverged(t, n.rng)
	if r := r1.ringOf(n.rng); len(r.owned(4)) != 0 {
		t.Fatalf("ranges of the removed peer remain: %v", ringString(r))
	}
	for _, nd := range []*testNode{r1, r2, r3} {
		nd.mustAlloc(t, "after")
	}
	n.settleAll()
	n.checkConverged(t, n.rng)
	n.checkNoDuplicates(t)
}
