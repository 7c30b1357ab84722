package mesh

import "slices"

// adjacency lists, for every peer with an entry, its neighbours sorted by
// name. A connection counts only when both ends report it (and, when
// establishedOnly is set, both report it established).
func adjacency(peers map[PeerName]*peerEntry, establishedOnly bool) map[PeerName][]PeerName {
	reports := func(from, to PeerName) bool {
		e, ok := peers[from]
		if !ok {
			return false
		}
		for _, c := range e.Conns {
			if c.Peer == to && (c.Established || !establishedOnly) {
				return true
			}
		}
		return false
	}
	adj := make(map[PeerName][]PeerName, len(peers))
	for name, e := range peers {
		var ns []PeerName
		for _, c := range e.Conns {
			if c.Peer == name || (establishedOnly && !c.Established) {
				continue
			}
			if reports(c.Peer, name) {
				ns = append(ns, c.Peer)
			}
		}
		slices.Sort(ns)
		adj[name] = slices.Compact(ns)
	}
	return adj
}

// bfs walks the graph breadth first from root, visiting neighbours in name
// order, and returns each reached peer's parent (root maps to itself) and
// the visiting order. Every peer computes the same tree from the same
// topology.
func bfs(adj map[PeerName][]PeerName, root PeerName) (parent map[PeerName]PeerName, order []PeerName) {
	parent = map[PeerName]PeerName{root: root}
	order = []PeerName{root}
	for i := 0; i < len(order); i++ {
		u := order[i]
		for _, v := range adj[u] {
			if _, seen := parent[v]; !seen {
				parent[v] = u
				order = append(order, v)
			}
		}
	}
	return parent, order
}

// computeRoutes derives the unicast and broadcast tables for self.
func computeRoutes(self PeerName, peers map[PeerName]*peerEntry, establishedOnly bool) *Routes {
	adj := adjacency(peers, establishedOnly)
	parent, order := bfs(adj, self)
	unicast := make(map[PeerName]PeerName, len(order))
	for _, dst := range order[1:] {
		hop := dst
		for parent[hop] != self {
			hop = parent[hop]
		}
		unicast[dst] = hop
	}
	broadcast := make(map[PeerName][]PeerName, len(order))
	for _, src := range order {
		p, _ := bfs(adj, src)
		var next []PeerName
		for _, v := range adj[self] {
			if p[v] == self && v != src {
				next = append(next, v)
			}
		}
		broadcast[src] = next
	}
	return NewRoutes(self, unicast, broadcast)
}

// routesEqual reports whether two snapshots hold the same tables.
func routesEqual(a, b *Routes) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.self != b.self || len(a.unicast) != len(b.unicast) || len(a.broadcast) != len(b.broadcast) {
		return false
	}
	for k, v := range a.unicast {
		if w, ok := b.unicast[k]; !ok || w != v {
			return false
		}
	}
	for k, v := range a.broadcast {
		if w, ok := b.broadcast[k]; !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}
