package mesh

import (
	"cmp"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// sparseMesh builds the topology of n peers named 1..n: each peer dials
// 3 to 10 others (one of them a lower-numbered peer, so the mesh is
// connected), ten hubs hold about 500 connections each, and one
// connection in twenty has its data path still pending. Each entry lists
// its connections by peer name, as selfEntryLocked does.
func sparseMesh(n int, seed uint64) map[PeerName]*peerEntry {
	rng := rand.New(rand.NewPCG(seed, seed))
	peers := make(map[PeerName]*peerEntry, n)
	for i := 1; i <= n; i++ {
		peers[PeerName(i)] = &peerEntry{Name: PeerName(i), UID: uint64(i), Version: 1}
	}
	seen := map[[2]PeerName]bool{}
	connect := func(a, b PeerName) {
		if a == b || seen[[2]PeerName{a, b}] || seen[[2]PeerName{b, a}] {
			return
		}
		seen[[2]PeerName{a, b}] = true
		est := rng.IntN(20) != 0
		peers[a].Conns = append(peers[a].Conns, connEntry{Peer: b, Outbound: true, Established: est})
		peers[b].Conns = append(peers[b].Conns, connEntry{Peer: a, Established: true})
	}
	for i := 2; i <= n; i++ {
		connect(PeerName(i), PeerName(1+rng.IntN(i-1)))
		for k := 2 + rng.IntN(9); k > 0; k-- {
			connect(PeerName(i), PeerName(1+rng.IntN(n)))
		}
	}
	for h := 1; h <= 10 && h <= n; h++ {
		for k := 0; k < 500; k++ {
			connect(PeerName(h), PeerName(1+rng.IntN(n)))
		}
	}
	for _, e := range peers {
		slices.SortFunc(e.Conns, func(a, b connEntry) int { return cmp.Compare(a.Peer, b.Peer) }) // as peers publish them
	}
	return peers
}

// BenchmarkRouteCalc10000 measures one recomputation as the update loop
// does it after a topology change: the data routes and the control routes
// of one peer in a sparse mesh of 10,000 peers, after one peer changed
// its entry (a data path came up or went down).
func BenchmarkRouteCalc10000(b *testing.B) {
	peers := sparseMesh(10000, 1)
	self := PeerName(4242)
	_, prev := computeRoutePair(self, slices.Collect(maps.Values(peers)), 1, nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := PeerName(1 + i%len(peers))
		e := *peers[p]
		e.Version++
		e.Conns = slices.Clone(e.Conns)
		e.Conns[0].Established = !e.Conns[0].Established
		peers[p] = &e
		entries := slices.Collect(maps.Values(peers)) // under Node.mu
		_, prev = computeRoutePair(self, entries, uint64(i+2), prev)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/recompute")
}

// BenchmarkRouteCalc10000Cold is BenchmarkRouteCalc10000 without the
// previous computation to reuse, as after a peer joins or leaves.
func BenchmarkRouteCalc10000Cold(b *testing.B) {
	peers := sparseMesh(10000, 1)
	self := PeerName(4242)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		entries := slices.Collect(maps.Values(peers)) // under Node.mu
		computeRoutePair(self, entries, uint64(i+1), nil)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/recompute")
}

// BenchmarkBroadcastTree10000 measures the first lookup of a source's
// broadcast next hops in a mesh of 10,000 peers: one walk of the graph,
// after which the snapshot answers from its cache.
func BenchmarkBroadcastTree10000(b *testing.B) {
	peers := sparseMesh(10000, 1)
	data, _ := computeRoutePair(4242, slices.Collect(maps.Values(peers)), 1, nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%10000 == 0 && i > 0 {
			b.StopTimer()
			data, _ = computeRoutePair(4242, slices.Collect(maps.Values(peers)), 1, nil)
			b.StartTimer()
		}
		data.Broadcast(PeerName(1 + i%10000))
	}
}
