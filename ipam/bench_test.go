package ipam

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
)

// The goals: p99 under 1 ms when this router owns free space,
// under one round trip + 10 ms when it borrows, little gossip per
// allocation, under 50 MiB for 10^5 allocations. Run with
// `go test -run '^$' -bench . ./ipam/`.

// countingTransport counts what is broadcast and drops it.
type countingTransport struct{ bytes, msgs atomic.Int64 }

func (c *countingTransport) Broadcast(d mesh.GossipData) {
	for _, m := range d.Encode() {
		c.bytes.Add(int64(len(m)))
		c.msgs.Add(1)
	}
}
func (c *countingTransport) Unicast(mesh.PeerName, []byte) error { return nil }

// reportLatency reports the 50th and 99th percentiles of ds.
func reportLatency(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	q := func(f float64) float64 {
		return float64(ds[min(len(ds)-1, int(f*float64(len(ds))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// ringOf100 is a ring of the range shared by 100 routers, self one of
// them, each owning three ranges.
func ringOf100(rng netip.Prefix, self mesh.PeerName) []byte {
	s := spanOf(rng)
	n := uint64(300)
	ents := make([]entry, n)
	for i := range ents {
		owner := mesh.PeerName(i%100 + 1)
		size := s.size() / n
		ents[i] = entry{start: s.lo + uint64(i)*size, owner: owner, version: 5, free: size}
	}
	ents[len(ents)-1].free = s.hi - ents[len(ents)-1].start
	_ = self
	return encodeUpdate([]poolUpdate{{pool: rng, seed: Seed{At: 1, By: 1}, ents: ents, whole: true}})
}

// BenchmarkAllocateOwned: allocation when this router owns free space,
// alone and as one of 100 routers whose ring it persists.
func BenchmarkAllocateOwned(b *testing.B) {
	rng := netip.MustParsePrefix("10.0.0.0/8")
	for _, c := range []struct {
		name    string
		ring    bool
		persist bool
	}{
		{"lone", false, false},
		{"of-100-persisted", true, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			tr := &countingTransport{}
			cfg := Config{Self: 7, Range: rng, Transport: tr, Peers: staticPeers{7}}
			if c.ring {
				cfg.Peers = staticPeers(slices.Collect(func(yield func(mesh.PeerName) bool) {
					for i := range 100 {
						if !yield(mesh.PeerName(i + 1)) {
							return
						}
					}
				}))
				cfg.Saved = []SavedPool{{Pool: rng, Ring: ringOf100(rng, 7)}}
			}
			if c.persist {
				cfg.Persister = newMemStore()
			}
			a, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			ds := make([]time.Duration, 0, b.N)
			tr.bytes.Store(0)
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				if _, err := a.Allocate(ctx, fmt.Sprint("c", i), netip.Prefix{}); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(t0))
			}
			b.StopTimer()
			reportLatency(b, ds)
			b.ReportMetric(float64(tr.bytes.Load())/float64(b.N), "gossip-B/alloc")
		})
	}
}

// BenchmarkAllocateBorrow: allocation on a router that owns nothing, so
// that it borrows from its peer over the in-memory network (one round
// trip there: a space request, then the lender's ring). After each
// allocation the borrower hands its space back, untimed.
func BenchmarkAllocateBorrow(b *testing.B) {
	n := newTestNet(b, "10.32.0.0/12")
	r1, r2 := n.add(1, 0), n.add(2, 0)
	r1.mustAlloc(b, "seed")
	n.settleAll()
	ctx := context.Background()
	ds := make([]time.Duration, 0, b.N)
	var rtt []time.Duration
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if _, err := r2.a.Allocate(ctx, fmt.Sprint("c", i), netip.Prefix{}); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
		b.StopTimer()
		n.settle()
		if err := r2.a.HandOver(); err != nil {
			b.Fatal(err)
		}
		n.settle()
		// The network's round trip alone: a ring request and its answer.
		if i < 1000 {
			before := n.statsNow().msgs
			t1 := time.Now()
			r2.a.mu.Lock()
			r2.a.unicastLocked(1, request{kind: kindRingRequest, pool: n.rng}.encode())
			r2.a.mu.Unlock()
			r2.a.send()
			n.settle()
			if n.statsNow().msgs == before+2 {
				rtt = append(rtt, time.Since(t1))
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	reportLatency(b, ds)
	if len(rtt) > 0 {
		slices.Sort(rtt)
		b.ReportMetric(float64(rtt[len(rtt)/2].Nanoseconds())/1e3, "rtt-p50-µs")
	}
}

// BenchmarkMemory1e5: the heap of one router holding 10^5 addresses, by
// container-ID-like idents of 64 characters.
func BenchmarkMemory1e5(b *testing.B) {
	const count = 100_000
	var total float64
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		a, err := New(Config{Self: 1, Range: netip.MustParsePrefix("10.32.0.0/12"), Transport: &countingTransport{}, Peers: staticPeers{1}})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		for i := range count {
			if _, err := a.Allocate(ctx, fmt.Sprintf("%064x", i), netip.Prefix{}); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		total += float64(after.HeapInuse-before.HeapInuse) / (1 << 20)
		runtime.KeepAlive(a)
	}
	b.ReportMetric(total/float64(b.N), "MiB/1e5")
}
