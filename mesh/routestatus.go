package mesh

import "net/netip"

// ComputeRoutes derives self's data routes (established connections only)
// and control routes (any connection both ends report) from a topology
// as Status reports it, with the route computation the Node runs. It is
// pure: simulations time it and router tests build their routes with it.
func ComputeRoutes(self PeerName, peers []PeerStatus) (data, ctrl *Routes) {
	entries := make([]*peerEntry, 0, len(peers))
	for _, p := range peers {
		e := &peerEntry{Name: p.Name, NickName: p.NickName, UID: p.UID, Version: p.Version}
		for _, c := range p.Connections {
			addr, _ := netip.ParseAddrPort(c.Address)
			e.Conns = append(e.Conns, connEntry{Peer: c.Peer, Addr: addr, Outbound: c.Outbound, Established: c.Established})
		}
		entries = append(entries, e)
	}
	return computeRoutePair(self, entries, 0, nil)
}
