package routertest

import (
	"context"
	"maps"
	"net/netip"
	"testing"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/router"
)

// Node is one running router with its fake device and transport.
type Node struct {
	Name      mesh.PeerName
	Addr      netip.AddrPort
	Router    *router.Router
	Device    *Device
	Transport *Transport
	// Features are the handshake features the node announces: Connect
	// hands them to its peers as OverlayConnectionParams.RemoteFeatures.
	Features map[string]string
}

// StartNode creates a router named name on a fake device of the given MTU
// and a transport at addr on nw, lets mod adjust its config, and runs it
// until the test ends.
func StartNode(t testing.TB, nw *Network, name mesh.PeerName, addr netip.AddrPort, mtu int, mod func(*router.Config)) *Node {
	t.Helper()
	n := &Node{
		Name:      name,
		Addr:      addr,
		Device:    NewDevice(mtu, 4096),
		Transport: nw.Transport(addr, 4096),
	}
	cfg := router.Config{Self: name, Device: n.Device, Transport: n.Transport}
	if mod != nil {
		mod(&cfg)
	}
	r, err := router.New(cfg)
	if err != nil {
		t.Fatalf("start node %s: %v", name, err)
	}
	n.Router = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node %s: run: %v", name, err)
		}
	})
	return n
}

// Connect creates the data paths of a control connection that a dialled
// to b (ab is a's outbound side, ba b's inbound side), wires their control
// messages to each other and confirms both.
func Connect(a, b *Node, uid uint64) (ab, ba mesh.OverlayConnection, err error) {
	pa := mesh.OverlayConnectionParams{
		LocalPeer: a.Name, RemotePeer: b.Name, Outbound: true, ConnUID: uid,
		RemoteAddr: b.Addr, RemoteDataPort: b.Addr.Port(), RemoteFeatures: maps.Clone(b.Features),
		SendControl: func(msg []byte) error { ba.HandleControl(msg); return nil },
	}
	pb := mesh.OverlayConnectionParams{
		LocalPeer: b.Name, RemotePeer: a.Name, Outbound: false, ConnUID: uid,
		// The inbound side sees the dialler's ephemeral TCP port.
		RemoteAddr:     netip.AddrPortFrom(a.Addr.Addr(), 40000),
		RemoteDataPort: a.Addr.Port(),
		RemoteFeatures: maps.Clone(a.Features),
		SendControl:    func(msg []byte) error { ab.HandleControl(msg); return nil },
	}
	if ab, err = a.Router.PrepareConnection(pa); err != nil {
		return nil, nil, err
	}
	if ba, err = b.Router.PrepareConnection(pb); err != nil {
		return nil, nil, err
	}
	ab.Confirm()
	ba.Confirm()
	return ab, ba, nil
}

// Graph is an undirected topology: each peer's neighbours.
type Graph map[mesh.PeerName][]mesh.PeerName

// Link adds the undirected edge a–b.
func (g Graph) Link(a, b mesh.PeerName) {
	g[a] = append(g[a], b)
	g[b] = append(g[b], a)
}

// Routes computes self's data routes over g with the mesh's own route
// computation (mesh.ComputeRoutes), every link established in both
// directions.
func Routes(self mesh.PeerName, g Graph) *mesh.Routes {
	peers := make([]mesh.PeerStatus, 0, len(g))
	for p, nbrs := range g {
		ps := mesh.PeerStatus{Name: p, UID: 1, Version: 1}
		for _, q := range nbrs {
			ps.Connections = append(ps.Connections, mesh.PeerConnectionStatus{Peer: q, Established: true})
		}
		peers = append(peers, ps)
	}
	data, _ := mesh.ComputeRoutes(self, peers)
	return data
}

// InstallRoutes computes and installs each node's routes over g.
func InstallRoutes(g Graph, nodes ...*Node) {
	for _, n := range nodes {
		n.Router.RoutesChanged(Routes(n.Name, g))
	}
}
