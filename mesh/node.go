// Package mesh is weft's control plane: TCP control connections between
// routers (handshake, framing, heartbeats), topology gossip, routes, the
// connection maker with discovery and backoff, and gossip channels for
// other subsystems. The data plane plugs in through Overlay.
//
// Goroutines: a Node owns all of them and Stop waits for every one. Start
// runs the accept loop, the connection maker loop and the update loop
// (coalesced topology broadcasts, route recomputation, garbage collection,
// periodic gossip). Each connection has a reader goroutine (which also ran
// its handshake) and a writer goroutine (send queue, heartbeats, overlay
// Established/Failed). Dial attempts run in their own goroutines and
// become the reader goroutine of the connection they create. Node.mu
// guards all shared state; no lock is held while calling the Overlay or a
// Gossiper, or while writing to a socket.
//
// Every timer, deadline and connection comes from Config.Clock and
// Config.Network (the system's when nil), so that mesh/meshtest can run
// many nodes in one process on a virtual clock and an in-memory network.
package mesh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// Node is one peer of the mesh.
type Node struct {
	cfg Config
	log *slog.Logger
	uid uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ln     net.Listener
	port   int

	routes     atomic.Pointer[Routes] // data routes: established, symmetric connections
	ctrlRoutes atomic.Pointer[Routes] // gossip routes: any symmetric connection

	kickUpdate chan struct{}
	kickMaker  chan struct{}

	mu        sync.Mutex
	started   bool
	stopped   bool
	version   uint64
	topo      *topology
	conns     map[PeerName]*conn // registered connections, one per peer
	all       map[*conn]struct{} // every open connection, registered or not
	dirty     map[PeerName]struct{}
	targets   map[string]*target // direct targets by host:port
	order     []string           // direct targets in the order given
	found     map[string]*target // discovered targets by host:port
	forgotten map[string]bool
	selfAddrs map[string]bool // addresses that turned out to be ourselves
	channels  map[string]*GossipChannel
	goneHooks []func(PeerName)
	refused   map[netip.Addr]refusal // recent inbound refusals by remote IP
	clashes   map[nameClash]int      // entries of another router with a name in use

	discoveryDials   tokenBucket // dials of discovered targets
	discoverLoopback bool        // we listen on loopback only: so do our peers

	preauth        *preauthGate  // inbound connections still in their handshake
	preauthRefused atomic.Uint64 // inbound connections the gate refused
	topoRefused    topoRefusalCounters
	gossipRefused  atomic.Uint64 // gossip messages whose source did not check out
	refusals       refusalCounts // handshake refusals by kind (status.go)
	traffic        trafficCounts // control-plane bytes by message tag (status.go)

	summaryMismatches atomic.Uint64 // neighbour summaries that differed from ours
}

// NewNode validates cfg and returns a node that is not yet listening.
func NewNode(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	uid, err := randomUint64()
	if err != nil {
		return nil, fmt.Errorf("new mesh node: %w", err)
	}
	n := &Node{
		cfg:        cfg,
		log:        cfg.Logger,
		uid:        uid,
		kickUpdate: make(chan struct{}, 1),
		kickMaker:  make(chan struct{}, 1),
		version:    1,
		conns:      map[PeerName]*conn{},
		all:        map[*conn]struct{}{},
		dirty:      map[PeerName]struct{}{},
		targets:    map[string]*target{},
		found:      map[string]*target{},
		forgotten:  map[string]bool{},
		selfAddrs:  map[string]bool{},
		channels:   map[string]*GossipChannel{},
		preauth:    newPreauthGate(cfg.PreauthLimit, cfg.PreauthLimitPerAddr),

		discoveryDials: tokenBucket{burst: cfg.DiscoveryBurst, every: cfg.DiscoveryInterval},
	}
	n.topo = newTopology(n.selfEntryLocked())
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// Name returns our peer name.
func (n *Node) Name() PeerName { return n.cfg.Name }

// UID returns the random identifier of this incarnation of the node.
func (n *Node) UID() uint64 { return n.uid }

// Start listens on the control address and starts the node's goroutines.
// It fails if the address is taken. ctx bounds only the listen call; the
// node runs until Stop.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.started || n.stopped {
		n.mu.Unlock()
		return fmt.Errorf("start mesh node: already started")
	}
	n.started = true
	n.mu.Unlock()
	ln, err := n.cfg.Network.Listen(ctx, n.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("start mesh node: listen on %s: %w", n.cfg.ListenAddr, err)
	}
	n.ln = ln
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		n.port = ta.Port
		n.mu.Lock()
		n.discoverLoopback = ta.IP.IsLoopback()
		n.mu.Unlock()
	}
	n.log.Info("mesh listening", "addr", ln.Addr().String(), "name", n.cfg.Name.String(), "uid", n.uid)
	n.wg.Add(3)
	go n.acceptLoop()
	go n.makerLoop()
	go n.updateLoop()
	n.kick(n.kickMaker)
	n.kick(n.kickUpdate)
	return nil
}

// Addr returns the address the node listens on, nil before Start.
func (n *Node) Addr() net.Addr {
	if n.ln == nil {
		return nil
	}
	return n.ln.Addr()
}

// Stop closes the listener and every connection and waits for all of the
// node's goroutines. It is idempotent.
func (n *Node) Stop() {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	n.stopped = true
	n.cancel()
	if n.ln != nil {
		n.ln.Close()
	}
	all := make([]*conn, 0, len(n.all))
	for c := range n.all {
		all = append(all, c)
	}
	n.mu.Unlock()
	for _, c := range all {
		c.close(ErrStopped)
	}
	n.wg.Wait()
}

// Routes returns the current data-plane routes snapshot (nil before the
// first computation).
func (n *Node) Routes() *Routes { return n.routes.Load() }

// Reachable reports whether p is ourselves or a peer the control routes
// reach: a path of connections that both ends report, whether or not
// their data paths are established, as gossip unicasts use, or a peer we
// hold a registered connection to (before the routes include it, gossip
// unicasts go straight to it). Safe for concurrent use.
func (n *Node) Reachable(p PeerName) bool {
	if p == n.cfg.Name {
		return true
	}
	if _, ok := n.ctrlRoutes.Load().Unicast(p); ok {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conns[p] != nil
}

// ReachablePeers returns ourselves and every peer Reachable reports, in
// ascending order of name.
func (n *Node) ReachablePeers() []PeerName {
	out := []PeerName{n.cfg.Name}
	if r := n.ctrlRoutes.Load(); r != nil {
		out = slices.AppendSeq(out, maps.Keys(r.unicast))
	}
	n.mu.Lock()
	for p := range n.conns {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	n.mu.Unlock()
	slices.Sort(out)
	return out
}

// PeerNickName returns the nickname of a known peer, "" if unknown.
func (n *Node) PeerNickName(p PeerName) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e, ok := n.topo.peers[p]; ok {
		return e.NickName
	}
	return ""
}

// PeerVersion returns the incarnation and version of peer p's entry in
// our topology; ok is false when p is unknown. Our own name gives our own
// entry's.
func (n *Node) PeerVersion(p PeerName) (uid, version uint64, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e, ok := n.topo.peers[p]; ok {
		return e.UID, e.Version, true
	}
	return 0, 0, false
}

// PeerKey returns the identity key of a peer in our topology (its own,
// proven in a handshake or carried by its signed entry), or nil when the
// peer is unknown. Our own name gives our key.
func (n *Node) PeerKey(p PeerName) ed25519.PublicKey {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e, ok := n.topo.peers[p]; ok && len(e.Key) == IdentityKeyLen {
		return ed25519.PublicKey(e.Key)
	}
	return nil
}

// OnPeerGone registers f to be called, from the node's update goroutine,
// with the name of each peer removed from the topology because it is no
// longer reachable. f must not block.
func (n *Node) OnPeerGone(f func(PeerName)) {
	n.mu.Lock()
	n.goneHooks = append(n.goneHooks, f)
	n.mu.Unlock()
}

// kick wakes a loop without blocking.
func (n *Node) kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// selfEntryLocked builds our own topology entry from the registered
// connections.
func (n *Node) selfEntryLocked() *peerEntry {
	e := &peerEntry{Name: n.cfg.Name, NickName: n.cfg.NickName, UID: n.uid, Version: n.version}
	for _, name := range sortedPeers(n.conns) {
		c := n.conns[name]
		e.Conns = append(e.Conns, connEntry{Peer: name, Addr: c.remoteAddr, Outbound: c.outbound, Established: c.established.Load()})
	}
	signEntry(n.cfg.Identity, e)
	return e
}

// localChangedLocked bumps our version after our connections changed and
// schedules a broadcast.
func (n *Node) localChangedLocked() {
	if n.version < math.MaxUint64 {
		n.version++
	}
	n.topo.setSelf(n.selfEntryLocked())
	n.dirty[n.cfg.Name] = struct{}{}
	n.kick(n.kickUpdate)
	n.kick(n.kickMaker)
}

// connsSnapshotLocked returns the registered connections sorted by peer.
func (n *Node) connsSnapshotLocked() []*conn {
	out := make([]*conn, 0, len(n.conns))
	for _, name := range sortedPeers(n.conns) {
		out = append(out, n.conns[name])
	}
	return out
}

func randomUint64() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("random: %w", err)
		}
		if v := binary.BigEndian.Uint64(b[:]); v != 0 {
			return v, nil
		}
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
