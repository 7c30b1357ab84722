package ipam

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// FuzzDecodeMessage feeds arbitrary bytes to the decoder of every IPAM
// message (updates, whole rings and requests): it must not panic, must
// refuse with ErrMalformed, and what it accepts must encode back to an
// equal message.
func FuzzDecodeMessage(f *testing.F) {
	for _, m := range seedMessages() {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, r, err := decodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		if u == nil {
			if got := r.encode(); !bytes.Equal(got, b) {
				t.Fatalf("request %+v encodes to %x, was %x", r, got, b)
			}
			return
		}
		u2, _, err := decodeMessage(encodeUpdate(u.pools))
		if err != nil {
			t.Fatalf("re-encoded update refused: %v", err)
		}
		if len(u.pools) == 0 {
			u.pools = nil
		}
		if len(u2.pools) == 0 {
			u2.pools = nil
		}
		if !reflect.DeepEqual(u, u2) {
			t.Fatalf("round trip:\n%+v\n%+v", u, u2)
		}
	})
}

// FuzzAllocatorMessages hands arbitrary messages, as unicast, broadcast
// and gossip, to an Allocator that owns part of a ring and holds
// addresses: it must not panic, its ring must still tile the pool, and
// it must still allocate (or say why not).
func FuzzAllocatorMessages(f *testing.F) {
	for _, m := range seedMessages() {
		f.Add(m, byte(0))
	}
	f.Fuzz(func(t *testing.T, b []byte, how byte) {
		tr := &captureTransport{}
		pool := netip.MustParsePrefix("10.9.0.0/24")
		lo := a2u(pool.Addr())
		a, err := New(Config{Self: 2, Range: pool, Transport: tr, Peers: staticPeers{1, 2, 3}, RetryInterval: time.Millisecond, Quarantine: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ring := encodeUpdate([]poolUpdate{{pool: pool, seed: Seed{At: 10, By: 1}, whole: true, ents: []entry{
			{start: lo, owner: 1, version: 2, free: 100},
			{start: lo + 128, owner: 2, version: 2, free: 64},
			{start: lo + 192, owner: 3, version: 2, free: 63},
		}}})
		if _, err := a.OnGossip(ring); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Allocate(context.Background(), "c1", netip.Prefix{}); err != nil {
			t.Fatal(err)
		}
		switch how % 3 {
		case 0:
			a.OnGossipUnicast(3, b)
		case 1:
			a.OnGossipBroadcast(3, b)
		case 2:
			a.OnGossip(b)
		}
		a.Tick()
		a.mu.Lock()
		for _, p := range a.pools {
			if p.ring.seeded() {
				// Free counts are the owners' word: a hostile peer may
				// make one exceed its range, not break the tiling.
				checkTokens(t, p.ring)
			}
		}
		a.mu.Unlock()
		_ = a.Status()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
		defer cancel()
		if _, err := a.Allocate(ctx, "c2", netip.Prefix{}); err != nil && !errors.Is(err, ErrNoSpace) && !errors.Is(err, ErrUnreachableSpace) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("allocate after the message: %v", err)
		}
	})
}

// seedMessages returns real messages of every kind.
func seedMessages() [][]byte {
	out := [][]byte{encodeUpdate(testUpdate.pools), encodeUpdate(testUpdate.pools[:1])}
	whole := testUpdate.pools[0]
	whole.whole = true
	out = append(out, encodeUpdate([]poolUpdate{whole}))
	out = append(out, encodeAll(testRequests())...)
	out = append(out, request{kind: kindClaimsDone, pool: testPool}.encode())
	// As sent between routers of a /24: a delta, a whole ring, a claim.
	pool := netip.MustParsePrefix("10.9.0.0/24")
	lo := a2u(pool.Addr())
	s := Seed{At: 10, By: 1}
	out = append(out,
		encodeUpdate([]poolUpdate{{pool: pool, seed: s, ents: []entry{{start: lo + 128, owner: 3, version: 9, free: 1}}}}),
		encodeUpdate([]poolUpdate{{pool: pool, seed: Seed{At: 5, By: 3}, whole: true, ents: []entry{{start: lo, owner: 3, version: 1, free: 254}}}}),
		request{kind: kindClaim, pool: pool, addr: netip.MustParseAddr("10.9.0.130"), ident: "c9"}.encode(),
		request{kind: kindSpaceRequest, pool: pool, subnet: pool}.encode(),
	)
	return out
}
