package mesh

import (
	"maps"
	"reflect"
	"slices"
	"testing"
)

// link is one connection as reported by its ends.
type link struct {
	a, b       PeerName
	aReports   bool // a lists the connection
	bReports   bool
	aEst, bEst bool // established as reported by each end
}

func up(a, b PeerName) link      { return link{a, b, true, true, true, true} }
func oneWay(a, b PeerName) link  { return link{a, b, true, false, true, false} }
func pending(a, b PeerName) link { return link{a, b, true, true, true, false} }

// graph builds topology entries for peers 1..n with the given links.
func graph(n int, links ...link) map[PeerName]*peerEntry {
	peers := map[PeerName]*peerEntry{}
	for i := 1; i <= n; i++ {
		peers[PeerName(i)] = &peerEntry{Name: PeerName(i), UID: uint64(i), Version: 1}
	}
	for _, l := range links {
		if l.aReports {
			peers[l.a].Conns = append(peers[l.a].Conns, connEntry{Peer: l.b, Outbound: true, Established: l.aEst})
		}
		if l.bReports {
			peers[l.b].Conns = append(peers[l.b].Conns, connEntry{Peer: l.a, Established: l.bEst})
		}
	}
	return peers
}

func TestUnicastRoutes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		links []link
		want  map[PeerName]PeerName // routes of peer 1
	}{
		{"line", 4, []link{up(1, 2), up(2, 3), up(3, 4)}, map[PeerName]PeerName{2: 2, 3: 2, 4: 2}},
		{"ring", 5, []link{up(1, 2), up(2, 3), up(3, 4), up(4, 5), up(5, 1)}, map[PeerName]PeerName{2: 2, 3: 2, 4: 5, 5: 5}},
		{"star centre", 4, []link{up(1, 2), up(1, 3), up(1, 4)}, map[PeerName]PeerName{2: 2, 3: 3, 4: 4}},
		{"star leaf", 4, []link{up(2, 1), up(2, 3), up(2, 4)}, map[PeerName]PeerName{2: 2, 3: 2, 4: 2}},
		{"partition", 4, []link{up(1, 2), up(3, 4)}, map[PeerName]PeerName{2: 2}},
		{"asymmetric link unused", 3, []link{oneWay(1, 3), up(1, 2), up(2, 3)}, map[PeerName]PeerName{2: 2, 3: 2}},
		{"unestablished link unused", 3, []link{pending(1, 3), up(1, 2), up(2, 3)}, map[PeerName]PeerName{2: 2, 3: 2}},
		{"direct when healthy", 3, []link{up(1, 3), up(1, 2), up(2, 3)}, map[PeerName]PeerName{2: 2, 3: 3}},
		{"ties broken by lowest name", 4, []link{up(1, 3), up(1, 2), up(2, 4), up(3, 4)}, map[PeerName]PeerName{2: 2, 3: 3, 4: 2}},
		{"alone", 1, nil, map[PeerName]PeerName{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := computeRoutes(1, graph(tc.n, tc.links...), true)
			if got := r.UnicastTable(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("unicast = %v, want %v", got, tc.want)
			}
			if _, ok := r.Unicast(1); ok {
				t.Fatal("route to ourselves")
			}
		})
	}
}

func TestControlRoutesUseUnestablished(t *testing.T) {
	r := computeRoutes(1, graph(2, pending(1, 2)), false)
	if next, ok := r.Unicast(2); !ok || next != 2 {
		t.Fatalf("control route = %v %v", next, ok)
	}
	r = computeRoutes(1, graph(2, oneWay(1, 2)), false)
	if _, ok := r.Unicast(2); ok {
		t.Fatal("control route over a one-sided connection")
	}
}

// checkBroadcastOnce floods a broadcast from every source using each
// peer's own routes and checks that every reachable peer gets it exactly
// once, and that unicast paths reach their destination.
func checkBroadcastOnce(t *testing.T, peers map[PeerName]*peerEntry) {
	t.Helper()
	routes := map[PeerName]*Routes{}
	for p := range peers {
		routes[p] = computeRoutes(p, peers, true)
	}
	for src := range peers {
		reach := routes[src].UnicastTable()
		got := map[PeerName]int{}
		queue := []PeerName{src}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			for _, next := range routes[p].Broadcast(src) {
				got[next]++
				queue = append(queue, next)
				if got[next] > len(peers) {
					t.Fatalf("broadcast from %v loops", src)
				}
			}
		}
		for dst := range peers {
			want := 0
			if _, ok := reach[dst]; ok {
				want = 1
			}
			if got[dst] != want {
				t.Errorf("broadcast from %v reached %v %d times, want %d", src, dst, got[dst], want)
			}
			if want == 1 { // follow the unicast path
				hop, steps := src, 0
				for hop != dst && steps <= len(peers) {
					hop, _ = routes[hop].Unicast(dst)
					steps++
				}
				if hop != dst {
					t.Errorf("unicast %v -> %v does not arrive", src, dst)
				}
			}
		}
	}
}

func TestBroadcastExactlyOnce(t *testing.T) {
	full := func(n int) []link {
		var ls []link
		for a := 1; a <= n; a++ {
			for b := a + 1; b <= n; b++ {
				ls = append(ls, up(PeerName(a), PeerName(b)))
			}
		}
		return ls
	}
	for _, tc := range []struct {
		name  string
		n     int
		links []link
	}{
		{"line", 5, []link{up(1, 2), up(2, 3), up(3, 4), up(4, 5)}},
		{"ring", 6, []link{up(1, 2), up(2, 3), up(3, 4), up(4, 5), up(5, 6), up(6, 1)}},
		{"star", 5, []link{up(3, 1), up(3, 2), up(3, 4), up(3, 5)}},
		{"full mesh", 6, full(6)},
		{"partitions", 6, []link{up(1, 2), up(2, 3), up(4, 5), up(5, 6), up(6, 4)}},
		{"mixed with broken links", 6, append(full(6)[:9], pending(4, 5), oneWay(5, 6), up(6, 1))},
	} {
		t.Run(tc.name, func(t *testing.T) { checkBroadcastOnce(t, graph(tc.n, tc.links...)) })
	}
}

func TestBroadcastTables(t *testing.T) {
	// Ring 1-2-3-4-1. Trees (neighbours visited in name order):
	// from 1: 1->2, 1->4, 2->3; from 2: 2->1, 2->3, 1->4;
	// from 3: 3->2, 3->4, 2->1; from 4: 4->1, 4->3, 1->2.
	peers := graph(4, up(1, 2), up(2, 3), up(3, 4), up(4, 1))
	want := map[PeerName]map[PeerName][]PeerName{
		1: {1: {2, 4}, 2: {4}, 3: nil, 4: {2}},
		2: {1: {3}, 2: {1, 3}, 3: {1}, 4: nil},
	}
	for self, w := range want {
		got := computeRoutes(self, peers, true).BroadcastTable()
		for src, next := range w {
			if !slices.Equal(got[src], next) {
				t.Errorf("peer %v, src %v: next = %v, want %v", self, src, got[src], next)
			}
		}
	}
}

func TestRoutesBrokenAndHealed(t *testing.T) {
	healthy := graph(3, up(1, 2), up(2, 3), up(1, 3))
	broken := graph(3, up(1, 2), up(2, 3), pending(1, 3))
	for _, step := range []struct {
		peers map[PeerName]*peerEntry
		want  PeerName
	}{{healthy, 3}, {broken, 2}, {healthy, 3}} {
		if next, _ := computeRoutes(1, step.peers, true).Unicast(3); next != step.want {
			t.Fatalf("next hop to 3 = %v, want %v", next, step.want)
		}
	}
	a, b := computeRoutes(1, healthy, true), computeRoutes(1, maps.Clone(healthy), true)
	if !routesEqual(a, b) || routesEqual(a, computeRoutes(1, broken, true)) {
		t.Fatal("routesEqual wrong")
	}
}

func TestRoutesLookupsDoNotAllocate(t *testing.T) {
	r := computeRoutes(1, graph(4, up(1, 2), up(2, 3), up(3, 4)), true)
	var sink int
	allocs := testing.AllocsPerRun(1000, func() {
		next, _ := r.Unicast(4)
		sink += int(next) + len(r.Broadcast(3))
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per lookup", allocs)
	}
	_ = sink
}
