package router_test

import (
	"bytes"
	"context"
	"net/netip"
	"testing"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/router/routertest"
	"github.com/weftnet/weft/router/udp"
)

// TestLoopbackUDP runs two routers over real UDP sockets on 127.0.0.1
// (no root needed): heartbeats, path MTU probing and frames end to end.
func TestLoopbackUDP(t *testing.T) {
	type end struct {
		node *routertest.Node
		conn *udp.Conn
	}
	var ends [2]end
	for i := range ends {
		c, err := udp.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		dev := routertest.NewDevice(9000, 1024)
		cfg := router.Config{Self: mesh.PeerName(i + 1), Device: dev, Transport: c}
		fast(&cfg)
		r, err := router.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
		ends[i] = end{node: &routertest.Node{Name: cfg.Self, Addr: c.LocalAddr(), Router: r, Device: dev}, conn: c}
	}
	a, b := ends[0].node, ends[1].node
	ab, ba, err := routertest.Connect(a, b, 5)
	if err != nil {
		t.Fatal(err)
	}
	established(t, ab, ba)
	g := routertest.Graph{}
	g.Link(a.Name, b.Name)
	routertest.InstallRoutes(g, a, b)
	waitMTU(t, a, b.Name, 9000) // loopback carries the whole device MTU

	big := frame(bcast, mac(1), 9014, 3)
	a.Device.Inject(big)
	if got := recv(t, b); !bytes.Equal(got, big) {
		t.Fatalf("got %d bytes, want %d", len(got), len(big))
	}
	reply := frame(mac(1), mac(2), 100, 4)
	b.Device.Inject(reply)
	if got := recv(t, a); !bytes.Equal(got, reply) {
		t.Fatal("reply differs")
	}
	if st := a.Router.Stats(); st.UDPDatagramsIn == 0 || st.DropSendError != 0 {
		t.Fatalf("stats %+v", st)
	}
}
