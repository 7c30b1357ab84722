package router_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/router/routertest"
	"github.com/weftnet/weft/secure"
)

// TestSuperFramesInTrains sends TCP super-frames between two offloading
// routers whose transports send trains of datagrams (UDP_SEGMENT), which
// arrive either datagram by datagram or coalesced into one message
// (UDP_GRO), plain and sealed. Every frame must arrive whole and in order.
func TestSuperFramesInTrains(t *testing.T) {
	for _, coalesce := range []bool{false, true} {
		for _, sealed := range []bool{false, true} {
			name := fmt.Sprintf("coalesce=%v/sealed=%v", coalesce, sealed)
			t.Run(name, func(t *testing.T) { superFramesInTrains(t, coalesce, sealed) })
		}
	}
}

func superFramesInTrains(t *testing.T, coalesce, sealed bool) {
	nw := routertest.NewNetwork(11)
	nodes := make([]*routertest.Node, 2)
	for i := range nodes {
		nodes[i] = routertest.StartNode(t, nw, mesh.PeerName(i+1), addr(i+1), 1406, func(c *router.Config) {
			fast(c)
			c.Device = vnetDevice{c.Device.(*routertest.Device)}
			c.Transport.(*routertest.Transport).EnableTrains(64, coalesce)
		})
	}
	a, b := nodes[0], nodes[1]
	var ka, kb *secure.KeyRing
	if sealed {
		var err error
		ka, kb, err = secure.NewLinkedKeyRings(secure.SuiteChaCha20Poly1305, secure.RekeyPolicy{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
	}
	ab, ba, err := routertest.ConnectKeys(a, b, 9, ka, kb)
	if err != nil {
		t.Fatal(err)
	}
	established(t, ab, ba)
	routertest.InstallRoutes(routertest.Graph{1: {2}, 2: {1}}, a, b)

	superFramesInOrder(t, a, b, 40, func(i int) int { return 1500 + i*1600 })
	if a.Transport.Trains() == 0 {
		t.Fatal("no train was sent")
	}
	for _, n := range nodes {
		st := n.Router.Stats()
		if st.DropReassembly+st.DropBadDatagram+st.DropOffload != 0 {
			t.Errorf("node %s dropped: %+v", n.Name, st)
		}
	}
	noSealDrops(t, a, b)
}

// TestRefusedTrainsGoOneByOne: a path that refuses trains (Linux: EIO from
// a device without checksum offload) gets the refused train datagram by
// datagram, nothing lost, and no trains for TrainRetry, then trains again;
// another peer of the same socket keeps its trains throughout.
func TestRefusedTrainsGoOneByOne(t *testing.T) {
	// Long enough that the phases before the sleep finish well within it
	// on a loaded machine.
	const retry = 1500 * time.Millisecond
	nw := routertest.NewNetwork(12)
	nodes := make([]*routertest.Node, 3)
	for i := range nodes {
		nodes[i] = routertest.StartNode(t, nw, mesh.PeerName(i+1), addr(i+1), 1406, func(c *router.Config) {
			fast(c)
			c.TrainRetry = retry
			c.Device = vnetDevice{c.Device.(*routertest.Device)}
			c.Transport.(*routertest.Transport).EnableTrains(64, true)
		})
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	a.Transport.RefuseTrainsTo(c.Transport.Addr())
	for _, n := range []*routertest.Node{b, c} {
		ax, xa, err := routertest.Connect(a, n, 9)
		if err != nil {
			t.Fatal(err)
		}
		established(t, ax, xa)
	}
	routertest.InstallRoutes(routertest.Graph{1: {2, 3}, 2: {1}, 3: {1}}, a, b, c)
	// b and c announce their MACs; each broadcast reaches the other two.
	for i, n := range []*routertest.Node{b, c} {
		n.Device.Inject(append(make([]byte, router.VnetHdrLen), frame(bcast, mac(byte(i+2)), 60, 1)...))
		for _, o := range nodes {
			if o != n {
				recv(t, o)
			}
		}
	}
	hdr := vnetHdr(1, 1 /* TCPV4 */, 54, 1348, 34, 16)
	// send puts count super-frames from a to n and checks they arrive
	// whole and in order.
	send := func(n *routertest.Node, dst byte, count int) {
		t.Helper()
		var sent [][]byte
		for i := range count {
			blob := append(bytes.Clone(hdr), frame(mac(dst), mac(1), 20000+i*1000, byte(i))...)
			sent = append(sent, blob)
			a.Device.Inject(blob)
		}
		for i, want := range sent {
			if got := recv(t, n); !bytes.Equal(got, want) {
				t.Fatalf("super-frame %d to %s: got %d bytes, want %d", i, n.Name, len(got), len(want))
			}
		}
	}

	send(c, 3, 5)
	// Trains built in the same batch as the first are refused too.
	refused := a.Router.Stats().TrainsRefused
	if refused == 0 {
		t.Fatal("TrainsRefused = 0 after super-frames to c, whose path refuses trains")
	}
	send(c, 3, 5)
	if got := a.Router.Stats().TrainsRefused; got != refused {
		t.Fatalf("TrainsRefused went from %d to %d within TrainRetry: want no trains to c", refused, got)
	}
	before := a.Transport.Trains()
	send(b, 2, 5)
	if got := a.Transport.Trains() - before; got < 5 {
		t.Errorf("b got %d trains for 5 super-frames after c's path refused them: want trains to b", got)
	}
	time.Sleep(retry + 100*time.Millisecond)
	send(c, 3, 2)
	if got := a.Router.Stats().TrainsRefused; got <= refused {
		t.Errorf("TrainsRefused = %d after TrainRetry, want more than %d (trains to c tried again)", got, refused)
	}
	for _, n := range nodes {
		if st := n.Router.Stats(); st.DropSendError+st.DropReassembly+st.DropBadDatagram != 0 {
			t.Errorf("node %s dropped: %+v", n.Name, st)
		}
	}
}
