package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestJoiningRouterDoesNotSeed: a router told to join peers that it does
// not reach yet seeds no ring of its own (it would clash with the mesh's):
// an allocation waits, says why, and goes through at once when the router
// turns out to be alone by choice (its peers forgotten).
func TestJoiningRouterDoesNotSeed(t *testing.T) {
	var joining atomic.Bool
	joining.Store(true)
	tr := &captureTransport{}
	a, err := New(Config{Self: 5, Range: netip.MustParsePrefix("10.9.0.0/24"), Transport: tr, Peers: staticPeers{5},
		RetryInterval: 2 * time.Millisecond, Joining: joining.Load})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = a.Allocate(ctx, "c1", netip.Prefix{})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "told to join peers") {
		t.Fatalf("allocation while joining: %v", err)
	}
	if st := a.Status(); !st.Pools[0].Seed.IsZero() {
		t.Fatalf("a joining router seeded a ring: %+v", st.Pools[0])
	}
	joining.Store(false)
	p, err := a.Allocate(context.Background(), "c1", netip.Prefix{})
	if err != nil || p.Addr() != netip.MustParseAddr("10.9.0.1") {
		t.Fatalf("alone by choice: %s, %v", p, err)
	}
}

// TestLowestAsksBeforeSeeding: the lowest-named of two connected routers,
// with no ring, first asks the other for the ring it may hold already; it
// adopts the ring that comes back (and borrows from it) instead of seeding
// a second one, and seeds only when none comes within the retry interval.
func TestLowestAsksBeforeSeeding(t *testing.T) {
	pool := netip.MustParsePrefix("10.9.0.0/24")
	for _, answer := range []bool{true, false} {
		tr := &captureTransport{}
		a, err := New(Config{Self: 1, Range: pool, Transport: tr, Peers: staticPeers{1, 7}, RetryInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := a.Allocate(ctx, "c1", netip.Prefix{})
			done <- err
		}()
		time.Sleep(5 * time.Millisecond)
		tr.mu.Lock()
		asked := len(tr.unicasts) == 1 && tr.unicasts[0].kind == kindRingRequest
		tr.mu.Unlock()
		if !asked {
			t.Fatalf("answer=%v: the lowest router did not ask for a ring first: %+v", answer, tr.unicasts)
		}
		if st := a.Status(); !st.Pools[0].Seed.IsZero() {
			t.Fatalf("answer=%v: seeded before the answer could come", answer)
		}
		seed := Seed{At: 1, By: 7}
		if answer {
			ring := (&update{pools: []poolUpdate{{pool: pool, seed: seed, whole: true,
				ents: []entry{{start: a2u(pool.Addr()), owner: 7, version: 4, free: 250}}}}}).Encode()
			if err := a.OnGossipUnicast(7, ring[0]); err != nil {
				t.Fatal(err)
			}
			if st := a.Status(); st.Pools[0].Seed != seed {
				t.Fatalf("the peer's ring was not adopted: %+v", st.Pools[0])
			}
			time.Sleep(10 * time.Millisecond)
			tr.mu.Lock()
			last := tr.unicasts[len(tr.unicasts)-1]
			tr.mu.Unlock()
			if last.kind != kindSpaceRequest {
				t.Fatalf("with the peer's ring the router should borrow, it sent %+v", last)
			}
			continue
		}
		if err := <-done; err != nil {
			t.Fatalf("no ring came: the router should seed after the retry interval: %v", err)
		}
		if st := a.Status(); st.Pools[0].Seed.By != 1 {
			t.Fatalf("seed %+v, want one by this router", st.Pools[0].Seed)
		}
	}
}

// TestTakeOverTwiceConnected: two connected routers run rmpeer for the same
// dead peer at once and allocate right away. The taken ranges settle before
// either allocates there, so the two meet, converge on the lower name, and
// no address is ever held twice.
func TestTakeOverTwiceConnected(t *testing.T) {
	n := newTestNet(t, "10.9.0.0/26")
	r1, r2, r3 := n.add(1, 0), n.add(2, 0), n.add(3, 0)
	r3.mustAlloc(t, "c3")
	r2.mustAlloc(t, "c2")
	n.settleAll()
	n.kill(3)
	if _, err := r2.a.TakeOver(3); err != nil {
		t.Fatal(err)
	}
	if _, err := r1.a.TakeOver(3); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for _, nd := range []*testNode{r1, r2} {
		go func() {
			for i := range 22 {
				if _, err := nd.alloc(fmt.Sprint(nd.name, "-", i), ""); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	n.settleAll()
	n.checkNoDuplicates(t)
	n.checkConverged(t, n.rng)
	for _, nd := range []*testNode{r1, r2} {
		if c := nd.a.Status().Pools[0].Conflicts; len(c) > 0 {
			t.Errorf("%v reports conflicts: %+v", nd.name, c)
		}
	}
}
