package mesh

import (
	"maps"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestRouteComputationOutsideLock holds the route computation of a node
// with 10,000 peers in the middle and checks that Status, which takes
// Node.mu, completes meanwhile.
func TestRouteComputationOutsideLock(t *testing.T) {
	me := testName(0xfeed01)
	n, err := NewNode(testConfig(0xfeed01, newFakeOverlay()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	peers := sparseMesh(10000, 7)
	self := &peerEntry{Name: me, UID: n.uid, Version: 2}
	for _, p := range []PeerName{1, 2, 3} {
		self.Conns = append(self.Conns, connEntry{Peer: p, Established: true})
		e := *peers[p]
		e.Conns = append(slices.Clone(e.Conns), connEntry{Peer: me, Established: true})
		peers[p] = &e
	}
	peers[me] = self
	n.mu.Lock()
	n.topo.peers = peers
	n.mu.Unlock()

	entered, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	hook := func(self PeerName) {
		if self == me {
			close(entered)
			<-release
		}
	}
	routeCalcHook.Store(&hook)
	t.Cleanup(func() { routeCalcHook.Store(nil) })
	go func() {
		defer close(done)
		n.flush()
	}()
	<-entered
	status := make(chan Status)
	go func() { status <- n.Status() }()
	select {
	case st := <-status:
		if len(st.Peers) != len(peers) {
			t.Errorf("status lists %d peers, want %d", len(st.Peers), len(peers))
		}
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("Status blocked while routes were being computed")
	}
	if n.Routes() != nil {
		t.Error("routes published before the computation finished")
	}
	close(release)
	<-done
	if got := len(n.Routes().UnicastTable()); got < len(peers)/2 || got >= len(peers) {
		t.Errorf("%d unicast routes among %d peers", got, len(peers))
	}
	if got := len(n.ctrlRoutes.Load().UnicastTable()); got != len(peers)-1 {
		t.Errorf("%d control routes, want %d", got, len(peers)-1)
	}
}

func TestPublishRoutesKeepsNewest(t *testing.T) {
	var p atomic.Pointer[Routes]
	older := &Routes{self: 1, gen: 1}
	newer := &Routes{self: 1, gen: 2}
	if !publishRoutes(&p, newer) {
		t.Fatal("first publish refused")
	}
	if publishRoutes(&p, older) || p.Load() != newer {
		t.Fatal("an older computation replaced a newer one")
	}
}

// refRoutes is the original computation: a walk from every source.
func refRoutes(self PeerName, peers map[PeerName]*peerEntry, establishedOnly bool) (map[PeerName]PeerName, map[PeerName][]PeerName) {
	reports := func(from, to PeerName) bool {
		for _, c := range peers[from].Conns {
			if c.Peer == to && (c.Established || !establishedOnly) {
				return true
			}
		}
		return false
	}
	adj := map[PeerName][]PeerName{}
	for name, e := range peers {
		var ns []PeerName
		for _, c := range e.Conns {
			if _, ok := peers[c.Peer]; ok && c.Peer != name && (c.Established || !establishedOnly) && reports(c.Peer, name) {
				ns = append(ns, c.Peer)
			}
		}
		slices.Sort(ns)
		adj[name] = slices.Compact(ns)
	}
	walk := func(root PeerName) (map[PeerName]PeerName, []PeerName) {
		parent, order := map[PeerName]PeerName{root: root}, []PeerName{root}
		for i := 0; i < len(order); i++ {
			for _, v := range adj[order[i]] {
				if _, seen := parent[v]; !seen {
					parent[v] = order[i]
					order = append(order, v)
				}
			}
		}
		return parent, order
	}
	parent, order := walk(self)
	unicast := map[PeerName]PeerName{}
	for _, dst := range order[1:] {
		hop := dst
		for parent[hop] != self {
			hop = parent[hop]
		}
		unicast[dst] = hop
	}
	broadcast := map[PeerName][]PeerName{}
	for _, src := range order {
		p, _ := walk(src)
		var next []PeerName
		for _, v := range adj[self] {
			if p[v] == self && v != src {
				next = append(next, v)
			}
		}
		broadcast[src] = next
	}
	return unicast, broadcast
}

// TestRoutesMatchReference compares the routes with the original
// computation on random small meshes with one-way, pending and duplicate
// connections listed in any order, computed afresh and reusing a previous
// computation.
func TestRoutesMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 300; round++ {
		n := 1 + rng.IntN(12)
		peers := map[PeerName]*peerEntry{}
		for i := 1; i <= n; i++ {
			peers[PeerName(i)] = &peerEntry{Name: PeerName(i)}
		}
		for k := rng.IntN(3 * n); k > 0; k-- {
			a, b := PeerName(1+rng.IntN(n)), PeerName(1+rng.IntN(n+1)) // n+1 is unknown
			peers[a].Conns = append(peers[a].Conns, connEntry{Peer: b, Established: rng.IntN(4) != 0})
			if rng.IntN(5) != 0 && b <= PeerName(n) {
				peers[b].Conns = append(peers[b].Conns, connEntry{Peer: a, Established: rng.IntN(4) != 0})
			}
		}
		self := PeerName(1 + rng.IntN(n))
		for _, est := range []bool{true, false} {
			wantU, wantB := refRoutes(self, peers, est)
			r := computeRoutes(self, peers, est)
			if got := r.UnicastTable(); !maps.Equal(got, wantU) {
				t.Fatalf("round %d est=%v: unicast %v, want %v", round, est, got, wantU)
			}
			got := r.BroadcastTable()
			if !maps.EqualFunc(got, wantB, slices.Equal) {
				t.Fatalf("round %d est=%v: broadcast %v, want %v", round, est, got, wantB)
			}
			again := computeRoutes(self, maps.Clone(peers), est)
			if !routesEqual(r, again) {
				t.Fatalf("round %d: routesEqual false for the same topology", round)
			}
		}
		// Recompute after some entries changed, reusing the first
		// computation, and sometimes after a peer joined.
		_, prev := computeRoutePair(self, slices.Collect(maps.Values(peers)), 1, nil)
		changed := maps.Clone(peers)
		for k := rng.IntN(3); k >= 0; k-- {
			p := PeerName(1 + rng.IntN(n))
			e := *changed[p]
			e.Conns = slices.Clone(e.Conns)
			if len(e.Conns) > 0 && rng.IntN(2) == 0 {
				i := rng.IntN(len(e.Conns))
				e.Conns[i].Established = !e.Conns[i].Established
			} else {
				e.Conns = append(e.Conns, connEntry{Peer: PeerName(1 + rng.IntN(n)), Established: true})
			}
			changed[p] = &e
		}
		if rng.IntN(4) == 0 {
			changed[PeerName(n+1)] = &peerEntry{Name: PeerName(n + 1), Conns: []connEntry{{Peer: self, Established: true}}}
		}
		data, ctrl := computeRoutePair(self, slices.Collect(maps.Values(changed)), 2, prev)
		for _, c := range []struct {
			r   *Routes
			est bool
		}{{data, true}, {ctrl, false}} {
			wantU, wantB := refRoutes(self, changed, c.est)
			if got := c.r.UnicastTable(); !maps.Equal(got, wantU) {
				t.Fatalf("round %d est=%v, reused: unicast %v, want %v", round, c.est, got, wantU)
			}
			if got := c.r.BroadcastTable(); !maps.EqualFunc(got, wantB, slices.Equal) {
				t.Fatalf("round %d est=%v, reused: broadcast %v, want %v", round, c.est, got, wantB)
			}
		}
	}
}
