package mesh

import (
	"slices"
	"time"
)

// Status is a snapshot of the node for `weft status` and `weft report`.
type Status struct {
	Name     PeerName
	NickName string
	UID      uint64
	Version  uint64
	// Peers lists every peer in the topology, ourselves included, by name.
	Peers []PeerStatus
	// Connections lists our connections and the targets we are trying to
	// connect to, one entry each, then inbound connections recently
	// refused in the handshake (State StateFailed, Outbound false, Reason
	// such as "authentication failed: password mismatch", "duplicate peer
	// name NAME: ...", or the text of Config.CheckPeer's error), one per
	// remote IP.
	Connections []ConnectionStatus
	// Targets are the direct targets in the order given.
	Targets []string
	// UnicastRoutes maps destination to next hop (data routes).
	UnicastRoutes map[PeerName]PeerName
	// BroadcastRoutes maps broadcast source to the neighbours we forward to.
	BroadcastRoutes map[PeerName][]PeerName
}

// PeerStatus is one peer of the topology.
type PeerStatus struct {
	Name        PeerName
	NickName    string
	UID         uint64
	Version     uint64
	Connections []PeerConnectionStatus
}

// PeerConnectionStatus is a connection as reported by the peer at its
// near end.
type PeerConnectionStatus struct {
	Peer        PeerName
	NickName    string
	Address     string
	Outbound    bool
	Established bool
}

// ConnectionStatus is one of our connections or connection attempts.
type ConnectionStatus struct {
	// Outbound is true for connections we dial (shown "->"), false for
	// inbound ones ("<-").
	Outbound bool
	// Address is the remote address (the target for attempts).
	Address string
	// State is one of StateConnecting, StatePending, StateEstablished,
	// StateRetrying, StateFailed.
	State string
	// Peer and PeerNickName identify the remote peer once known.
	Peer         PeerName
	PeerNickName string
	// Overlay describes the data path; zero for attempts.
	Overlay OverlayStatus
	// Reason explains why the connection is not established; empty
	// otherwise.
	Reason string
	// RTT is the round-trip time of the control connection as
	// Config.ConnRTT measures it; 0 when unknown or for attempts.
	RTT time.Duration
	// NextTry is when a retrying target is tried again.
	NextTry time.Time
}

// Status returns a snapshot of the node.
func (n *Node) Status() Status {
	n.mu.Lock()
	st := Status{Name: n.cfg.Name, NickName: n.cfg.NickName, UID: n.uid, Version: n.version, Targets: slices.Clone(n.order)}
	nick := func(p PeerName) string {
		if e, ok := n.topo.peers[p]; ok {
			return e.NickName
		}
		return ""
	}
	for _, e := range n.topo.entries(nil) {
		ps := PeerStatus{Name: e.Name, NickName: e.NickName, UID: e.UID, Version: e.Version}
		for _, c := range e.Conns {
			addr := ""
			if c.Addr.IsValid() {
				addr = c.Addr.String()
			}
			ps.Connections = append(ps.Connections, PeerConnectionStatus{Peer: c.Peer, NickName: nick(c.Peer), Address: addr, Outbound: c.Outbound, Established: c.Established})
		}
		st.Peers = append(st.Peers, ps)
	}
	conns := n.connsSnapshotLocked()
	var attempts []ConnectionStatus
	addTarget := func(t *target) {
		if t.peer != UnknownPeerName && n.conns[t.peer] != nil {
			return
		}
		cs := ConnectionStatus{Outbound: true, Address: t.addr, State: t.state, Peer: t.peer, PeerNickName: nick(t.peer), NextTry: t.nextTry}
		if t.attempting || cs.State == "" {
			cs.State = StateConnecting
		}
		if t.err != nil && cs.State != StateConnecting {
			cs.Reason = reason(t.err)
		}
		if cs.State != StateRetrying {
			cs.NextTry = time.Time{}
		}
		attempts = append(attempts, cs)
	}
	for _, a := range n.order {
		addTarget(n.targets[a])
	}
	for _, a := range sortedKeys(n.found) {
		addTarget(n.found[a])
	}
	attempts = append(attempts, n.refusalsLocked(n.cfg.Clock.Now())...)
	n.mu.Unlock()

	for _, c := range conns {
		cs := ConnectionStatus{Outbound: c.outbound, Address: c.remoteAddr.String(), Peer: c.remote.Name, PeerNickName: c.remote.NickName, Overlay: c.oc.Status()}
		if n.cfg.ConnRTT != nil {
			cs.RTT = n.cfg.ConnRTT(c.nc)
		}
		if c.established.Load() {
			cs.State = StateEstablished
		} else {
			cs.State = StatePending
			cs.Reason = cs.Overlay.Reason
		}
		st.Connections = append(st.Connections, cs)
	}
	st.Connections = append(st.Connections, attempts...)
	if r := n.routes.Load(); r != nil {
		st.UnicastRoutes = r.UnicastTable()
		st.BroadcastRoutes = r.BroadcastTable()
	}
	return st
}
