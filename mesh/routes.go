package mesh

// Routes is an immutable snapshot of the routes computed from the topology
// as seen by one peer. It is safe for concurrent use and is replaced, never
// modified, when the topology changes, so the data path may read it without
// locks.
type Routes struct {
	self      PeerName
	unicast   map[PeerName]PeerName   // destination -> next hop
	broadcast map[PeerName][]PeerName // source -> next hops, when given whole
	lazy      *lazyBroadcast          // else computed per source on first use
	gen       uint64                  // computation number, see publishRoutes
}

// NewRoutes builds a Routes value from precomputed tables. The maps are
// owned by the Routes afterwards and must not be modified.
func NewRoutes(self PeerName, unicast map[PeerName]PeerName, broadcast map[PeerName][]PeerName) *Routes {
	return &Routes{self: self, unicast: unicast, broadcast: broadcast}
}

// Self is the peer these routes were computed for.
func (r *Routes) Self() PeerName { return r.self }

// Unicast returns the neighbour to send a frame to so that it reaches dst,
// using only connections established in both directions. ok is false when
// dst is unreachable or is ourselves.
func (r *Routes) Unicast(dst PeerName) (next PeerName, ok bool) {
	if r == nil {
		return UnknownPeerName, false
	}
	next, ok = r.unicast[dst]
	return next, ok
}

// Broadcast returns the neighbours to which we forward a broadcast frame
// that originated at src, so that along the broadcast tree rooted at src
// every reachable peer receives it exactly once. The returned slice must
// not be modified.
func (r *Routes) Broadcast(src PeerName) []PeerName {
	if r == nil {
		return nil
	}
	if r.lazy != nil {
		return r.lazy.next(src)
	}
	return r.broadcast[src]
}

// UnicastTable returns a copy of the unicast table, for status output.
func (r *Routes) UnicastTable() map[PeerName]PeerName {
	out := make(map[PeerName]PeerName, len(r.unicast))
	for k, v := range r.unicast {
		out[k] = v
	}
	return out
}

// BroadcastTable returns a copy of the broadcast table, for status output.
// Routes computed from a topology fill in the tree of every source first,
// one walk of the graph per source.
func (r *Routes) BroadcastTable() map[PeerName][]PeerName {
	if r.lazy != nil {
		return r.lazy.table()
	}
	out := make(map[PeerName][]PeerName, len(r.broadcast))
	for k, v := range r.broadcast {
		out[k] = append([]PeerName(nil), v...)
	}
	return out
}
