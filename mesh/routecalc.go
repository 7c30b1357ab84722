package mesh

import (
	"cmp"
	"slices"
	"sync/atomic"
)

// Route computation runs outside Node.mu: the update loop copies the
// topology's entry pointers under the lock (entries are immutable), then
// builds a compact graph and walks it here. One breadth-first walk from
// ourselves gives every unicast route (O(V+E)); the broadcast next hops
// of a source need a walk from that source, so they are computed the
// first time the source is looked up and cached in the snapshot.

// routeGen numbers route computations in the order their topology
// snapshots were taken, so that an older computation never replaces a
// newer one (see publishRoutes).
var routeGen atomic.Uint64

// routeCalcHook, when set (by tests), is called with our name by the
// update loop before it computes routes, with Node.mu not held.
var routeCalcHook atomic.Pointer[func(self PeerName)]

// routeGraph is the topology as an undirected graph over peer indices. Peers
// are indexed in ascending order of name, and each neighbour list is
// sorted, so walking it visits neighbours in name order.
type routeGraph struct {
	names []PeerName
	index map[PeerName]int32
	off   []int32 // neighbours of i are nbrs[off[i]:off[i+1]]
	nbrs  []int32
	in    *routeInput // what the graph was built from, for the next build
}

func (g *routeGraph) adj(i int32) []int32 { return g.nbrs[g.off[i]:g.off[i+1]] }

// routeInput is a topology snapshot prepared for building graphs: the
// entries sorted by name, their index, and what each peer reports. It is
// immutable, and the next computation reuses what did not change.
type routeInput struct {
	entries []*peerEntry
	names   []PeerName
	index   map[PeerName]int32
	// rep[roff[i]:roff[i+1]] holds the peers i reports as index<<1 |
	// established, sorted, one per peer (established if any report is).
	roff []int32
	rep  []uint32
}

// newRouteInput prepares entries. When the set of peers is the one prev
// was built from, it keeps prev's index, and the reports of every entry
// that is still the same value (entries are replaced whole, never edited).
func newRouteInput(entries []*peerEntry, prev *routeInput) *routeInput {
	in := &routeInput{}
	if prev != nil && len(prev.entries) == len(entries) {
		sorted := make([]*peerEntry, len(entries))
		for _, e := range entries {
			i, ok := prev.index[e.Name]
			if !ok || sorted[i] != nil {
				sorted = nil
				break
			}
			sorted[i] = e
		}
		if sorted != nil {
			in.entries, in.names, in.index = sorted, prev.names, prev.index
		}
	}
	if in.entries == nil {
		prev = nil
		in.entries, in.names, in.index = peerIndex(entries)
	}
	in.roff = make([]int32, len(entries)+1)
	total := 0
	for _, e := range in.entries {
		total += len(e.Conns)
	}
	in.rep = make([]uint32, 0, total)
	for i, e := range in.entries {
		if prev != nil && prev.entries[i] == e {
			in.rep = append(in.rep, prev.rep[prev.roff[i]:prev.roff[i+1]]...)
			in.roff[i+1] = int32(len(in.rep))
			continue
		}
		start := len(in.rep)
		for _, c := range e.Conns {
			if j, ok := in.index[c.Peer]; ok && j != int32(i) {
				v := uint32(j) << 1
				if c.Established {
					v |= 1
				}
				in.rep = append(in.rep, v)
			}
		}
		s := in.rep[start:]
		if !slices.IsSorted(s) {
			slices.Sort(s)
		}
		w := 0
		for _, v := range s {
			if w > 0 && s[w-1]>>1 == v>>1 {
				s[w-1] |= v
				continue
			}
			s[w] = v
			w++
		}
		in.rep = in.rep[:start+w]
		in.roff[i+1] = int32(len(in.rep))
	}
	return in
}

// peerIndex sorts entries by name and indexes them.
func peerIndex(entries []*peerEntry) ([]*peerEntry, []PeerName, map[PeerName]int32) {
	type named struct {
		name PeerName
		e    *peerEntry
	}
	byName := make([]named, len(entries))
	for i, e := range entries {
		byName[i] = named{e.Name, e}
	}
	slices.SortFunc(byName, func(a, b named) int { return cmp.Compare(a.name, b.name) })
	sorted := make([]*peerEntry, len(entries))
	names := make([]PeerName, len(entries))
	index := make(map[PeerName]int32, len(entries))
	for i, n := range byName {
		sorted[i], names[i] = n.e, n.name
		index[n.name] = int32(i)
	}
	return sorted, names, index
}

// graphs returns the data graph, of the connections both ends report
// established, and the control graph, of the connections both ends
// report, in O(V+E).
func (in *routeInput) graphs() (data, ctrl *routeGraph) {
	n, rep, roff := len(in.entries), in.rep, in.roff
	newGraph := func() *routeGraph {
		return &routeGraph{names: in.names, index: in.index, off: make([]int32, n+1), nbrs: make([]int32, 0, len(rep)), in: in}
	}
	data, ctrl = newGraph(), newGraph()
	// Peers are visited in ascending order, so the reports of j that name
	// a peer below i were passed over already: cursor[j] skips them, and
	// each report is passed over once in all.
	cursor := slices.Clone(roff[:n])
	for i := 0; i < n; i++ {
		for _, v := range rep[roff[i]:roff[i+1]] {
			j := v >> 1
			k, end := cursor[j], roff[j+1]
			for k < end && rep[k]>>1 < uint32(i) {
				k++
			}
			cursor[j] = k
			if k < end && rep[k]>>1 == uint32(i) {
				ctrl.nbrs = append(ctrl.nbrs, int32(j))
				if v&rep[k]&1 != 0 {
					data.nbrs = append(data.nbrs, int32(j))
				}
			}
		}
		data.off[i+1], ctrl.off[i+1] = int32(len(data.nbrs)), int32(len(ctrl.nbrs))
	}
	return data, ctrl
}

// bfs walks g breadth first from root, visiting neighbours in name order,
// and fills parent (root is its own parent, -1 for unreached peers). It
// returns the visiting order. Every peer computes the same tree from the
// same topology. When stopAfter is non-nil the walk ends as soon as every
// peer in it has a parent.
func (g *routeGraph) bfs(root int32, parent []int32, stopAfter []int32) []int32 {
	for i := range parent {
		parent[i] = -1
	}
	parent[root] = root
	order := make([]int32, 1, 64)
	order[0] = root
	left := 0
	for _, v := range stopAfter {
		if v != root {
			left++
		}
	}
	for k := 0; k < len(order); k++ {
		if stopAfter != nil && left == 0 {
			break
		}
		u := order[k]
		for _, v := range g.adj(u) {
			if parent[v] < 0 {
				parent[v] = u
				order = append(order, v)
				if stopAfter != nil {
					if _, ok := slices.BinarySearch(stopAfter, v); ok {
						left--
					}
				}
			}
		}
	}
	return order
}

// computeRoutes derives the unicast and broadcast tables for self.
func computeRoutes(self PeerName, peers map[PeerName]*peerEntry, establishedOnly bool) *Routes {
	entries := make([]*peerEntry, 0, len(peers))
	for _, e := range peers {
		entries = append(entries, e)
	}
	data, ctrl := newRouteInput(entries, nil).graphs()
	if establishedOnly {
		return routesFromGraph(self, data, 0)
	}
	return routesFromGraph(self, ctrl, 0)
}

// computeRoutePair derives the data routes (established connections only)
// and the control routes (any symmetric connection) for self from a
// snapshot of the topology's entries, numbered gen. prev, the routes of
// the previous computation or nil, lends what did not change.
func computeRoutePair(self PeerName, entries []*peerEntry, gen uint64, prev *Routes) (data, ctrl *Routes) {
	if h := routeCalcHook.Load(); h != nil {
		(*h)(self)
	}
	var prevIn *routeInput
	if prev != nil && prev.lazy != nil {
		prevIn = prev.lazy.g.in
	}
	dg, cg := newRouteInput(entries, prevIn).graphs()
	return routesFromGraph(self, dg, gen), routesFromGraph(self, cg, gen)
}

// routesFromGraph walks g once from self for the unicast table; broadcast
// next hops are left to Routes.Broadcast.
func routesFromGraph(self PeerName, g *routeGraph, gen uint64) *Routes {
	s, ok := g.index[self]
	if !ok {
		r := NewRoutes(self, map[PeerName]PeerName{}, map[PeerName][]PeerName{self: nil})
		r.gen = gen
		return r
	}
	parent := make([]int32, len(g.names))
	order := g.bfs(s, parent, nil)
	hop := make([]int32, len(g.names))
	unicast := make(map[PeerName]PeerName, len(order))
	for _, v := range order[1:] {
		if p := parent[v]; p == s {
			hop[v] = v
		} else {
			hop[v] = hop[p]
		}
		unicast[g.names[v]] = g.names[hop[v]]
	}
	reached := make([]bool, len(g.names))
	for _, v := range order {
		reached[v] = true
	}
	return &Routes{self: self, unicast: unicast, gen: gen, lazy: &lazyBroadcast{
		g: g, self: s, order: order, reached: reached, cache: make([]atomic.Pointer[[]PeerName], len(g.names)),
	}}
}

// lazyBroadcast computes, on first lookup, the broadcast next hops of each
// source reachable from self, and caches them. Safe for concurrent use:
// two goroutines that miss the cache at once compute the same answer.
type lazyBroadcast struct {
	g       *routeGraph
	self    int32
	order   []int32 // reachable peers in the order self's walk visits them
	reached []bool
	cache   []atomic.Pointer[[]PeerName]
}

// next returns the neighbours of self whose parent in the broadcast tree
// rooted at src is self.
func (l *lazyBroadcast) next(src PeerName) []PeerName {
	i, ok := l.g.index[src]
	if !ok || !l.reached[i] {
		return nil
	}
	if p := l.cache[i].Load(); p != nil {
		return *p
	}
	mine := l.g.adj(l.self)
	parent := make([]int32, len(l.g.names))
	l.g.bfs(i, parent, mine)
	var out []PeerName
	for _, v := range mine {
		if parent[v] == l.self && v != i {
			out = append(out, l.g.names[v])
		}
	}
	l.cache[i].Store(&out)
	return out
}

// table computes the next hops of every reachable source.
func (l *lazyBroadcast) table() map[PeerName][]PeerName {
	out := make(map[PeerName][]PeerName, len(l.order))
	for _, v := range l.order {
		src := l.g.names[v]
		out[src] = append([]PeerName(nil), l.next(src)...)
	}
	return out
}

// sameComponent reports whether a and b hold the same graph over the
// peers self reaches, on which the broadcast trees depend alone.
func sameComponent(a, b *lazyBroadcast) bool {
	if len(a.order) != len(b.order) {
		return false
	}
	for k, u := range a.order {
		w := b.order[k]
		if a.g.names[u] != b.g.names[w] {
			return false
		}
		au, bw := a.g.adj(u), b.g.adj(w)
		if len(au) != len(bw) {
			return false
		}
		for x := range au {
			if a.g.names[au[x]] != b.g.names[bw[x]] {
				return false
			}
		}
	}
	return true
}

// publishRoutes stores r in p unless p holds routes from a newer
// computation, and reports whether it stored r.
func publishRoutes(p *atomic.Pointer[Routes], r *Routes) bool {
	for {
		old := p.Load()
		if old != nil && old.gen > r.gen {
			return false
		}
		if p.CompareAndSwap(old, r) {
			return true
		}
	}
}

// routesEqual reports whether two snapshots hold the same tables. It may
// report a difference in the broadcast tables where there is none (when
// the reachable graph changed but no tree did), never the reverse.
func routesEqual(a, b *Routes) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.self != b.self || len(a.unicast) != len(b.unicast) {
		return false
	}
	for k, v := range a.unicast {
		if w, ok := b.unicast[k]; !ok || w != v {
			return false
		}
	}
	if a.lazy != nil && b.lazy != nil {
		return sameComponent(a.lazy, b.lazy)
	}
	ab, bb := a.BroadcastTable(), b.BroadcastTable()
	if len(ab) != len(bb) {
		return false
	}
	for k, v := range ab {
		if w, ok := bb[k]; !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}
