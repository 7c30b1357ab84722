package router_test

import (
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
