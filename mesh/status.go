package mesh

import (
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/secure"
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
	// Refusals counts connections refused since the node started, by kind
	// (the Refusal constants): by the pre-authentication gate, and in or
	// after the handshake (either end refusing).
	Refusals map[string]uint64
	// NameClashes counts other routers seen using the name of ourselves or
	// of a connected peer (duplicate peer names; dupname.go), not counting
	// old incarnations of ourselves.
	NameClashes int
	// Forgeries counts gossip dropped since the node started, by kind
	// (the Forged constants): topology entries and gossip messages that
	// were not their peer's own word, or beyond the topology's limits.
	Forgeries map[string]uint64
	// ControlBytesSent and ControlBytesReceived count the bytes of the
	// control messages exchanged with peers after the handshake, by kind
	// ("topology", "gossip", "heartbeat", "overlay", "other").
	ControlBytesSent, ControlBytesReceived map[string]uint64
}

// Kinds of refused connections, the keys of Status.Refusals.
const (
	// RefusalPreauth: an inbound connection over the pre-authentication
	// limits (Config.PreauthLimit, Config.PreauthLimitPerAddr), closed
	// before its handshake.
	RefusalPreauth = "preauth_limit"
	// RefusalPassword: the password differs, or one side has none.
	RefusalPassword = "password"
	// RefusalVersion: no protocol version in common.
	RefusalVersion = "version"
	// RefusalDuplicateName: the remote uses a peer name already taken.
	RefusalDuplicateName = "duplicate_name"
	// RefusalIncompatible: Config.CheckPeer refused the peer's features.
	RefusalIncompatible = "incompatible"
	// RefusalMalformed: the handshake was malformed.
	RefusalMalformed = "malformed_handshake"
)

// Kinds of dropped gossip, the keys of Status.Forgeries.
const (
	// ForgedEntry: a topology entry not signed by its peer's key.
	ForgedEntry = "topology_signature"
	// ForgedSource: a gossip broadcast, unicast or neighbour gossip not
	// from the source it names.
	ForgedSource = "gossip_source"
	// OverPeerLimit: an entry of a new peer while the topology was full.
	OverPeerLimit = "topology_peer_limit"
	// OverBudget: entries beyond a connection's checking budget.
	OverBudget = "topology_budget"
)

// refusalKinds lists the kinds counted in the handshake, in index order.
var refusalKinds = [...]string{RefusalPassword, RefusalVersion, RefusalDuplicateName, RefusalIncompatible, RefusalMalformed}

// refusalCounts counts handshake refusals by kind. Safe for concurrent use.
type refusalCounts [len(refusalKinds)]atomic.Uint64

// count counts the refusal err (isRefusal(err) is true).
func (r *refusalCounts) count(err error) {
	kind := RefusalMalformed
	switch {
	case errors.Is(err, secure.ErrAuthentication), errors.Is(err, secure.ErrPeerRequiresPassword), errors.Is(err, secure.ErrPeerHasNoPassword):
		kind = RefusalPassword
	case errors.Is(err, secure.ErrUnsupportedVersion), errors.Is(err, ErrVersionMismatch):
		kind = RefusalVersion
	case errors.Is(err, ErrDuplicateName):
		kind = RefusalDuplicateName
	case errors.Is(err, ErrIncompatible):
		kind = RefusalIncompatible
	}
	r[slices.Index(refusalKinds[:], kind)].Add(1)
}

// liveClashesLocked counts the name clashes that are another live router:
// a clash with a connected peer's name, or with ours that used up its
// bumps (an old incarnation of ourselves needs one, and is no clash).
func (n *Node) liveClashesLocked() int {
	k := 0
	for c, count := range n.clashes {
		if c.name != n.cfg.Name || count >= maxNameClashBumps {
			k++
		}
	}
	return k
}

// controlKinds names the message tags for Status.ControlBytesSent.
var controlKinds = [...]string{
	tagFeatures: "other", tagHeartbeat: "heartbeat", tagClose: "other", tagTopology: "topology",
	tagGossip: "gossip", tagGossipUnicast: "gossip", tagGossipBroadcast: "gossip", tagOverlayControl: "overlay",
}

// trafficCounts counts control-plane bytes by message tag; unknown tags
// count as tagFeatures ("other"). Safe for concurrent use.
type trafficCounts struct {
	sent, received [len(controlKinds)]atomic.Uint64
}

// count adds msg to the counters of dir (&t.sent or &t.received).
func (t *trafficCounts) count(dir *[len(controlKinds)]atomic.Uint64, msg []byte) {
	tag := 0
	if len(msg) > 0 && int(msg[0]) < len(controlKinds) {
		tag = int(msg[0])
	}
	dir[tag].Add(uint64(len(msg)))
}

func controlBytes(dir *[len(controlKinds)]atomic.Uint64) map[string]uint64 {
	m := map[string]uint64{}
	for tag, kind := range controlKinds {
		m[kind] += dir[tag].Load()
	}
	return m
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
	st.NameClashes = n.liveClashesLocked()
	n.mu.Unlock()
	st.Refusals = map[string]uint64{RefusalPreauth: n.preauthRefused.Load()}
	for i, k := range refusalKinds {
		st.Refusals[k] = n.refusals[i].Load()
	}
	st.ControlBytesSent, st.ControlBytesReceived = controlBytes(&n.traffic.sent), controlBytes(&n.traffic.received)
	tr := n.TopologyRefusals()
	st.Forgeries = map[string]uint64{ForgedEntry: tr.BadSignature, ForgedSource: n.GossipRefused(),
		OverPeerLimit: tr.OverPeerLimit, OverBudget: tr.OverBudget}

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
