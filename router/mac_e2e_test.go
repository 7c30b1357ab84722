package router_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/router"
)

// TestMACFloodKeepsKnownMACs: a container behind b sends 100,000 frames
// with distinct source MACs. Each router learns at most the port limit of
// them, the MACs learned before stay, and frames to them still go
// straight to their host.
func TestMACFloodKeepsKnownMACs(t *testing.T) {
	const size, limit, flood = 64, 16, 100000
	nodes, _ := startNet(t, 2, 1500, [][2]int{{1, 2}}, nil, func(c *router.Config) {
		c.MACTableSize, c.MACPortLimit = size, limit
	})
	a, b := nodes[1], nodes[2]
	a.Device.Inject(frame(bcast, mac(1), 60, 1))
	recv(t, b)
	b.Device.Inject(frame(bcast, mac(2), 60, 2))
	recv(t, a)

	src := []byte{2, 0x99, 0, 0, 0, 0}
	for i := range flood {
		src[3], src[4], src[5] = byte(i>>16), byte(i>>8), byte(i)
		b.Device.Inject(frame(mac(1), src, 60, 3))
	}
	// The flood is through when a frame sent after it arrives (the
	// underlay may have dropped some of the flood, and this frame).
	marker := frame(mac(1), mac(2), 100, 4)
	deadline := time.After(30 * time.Second)
	for seen := false; !seen; {
		b.Device.Inject(marker)
		for drained := false; !drained && !seen; {
			select {
			case f := <-a.Device.Delivered():
				seen = bytes.Equal(f, marker)
			case <-time.After(100 * time.Millisecond):
				drained = true
			case <-deadline:
				t.Fatal("the flood never drained")
			}
		}
	}
	for len(a.Device.Delivered()) > 0 {
		<-a.Device.Delivered()
	}

	count := func(n *router.Router, owner mesh.PeerName, want []byte) (int, bool) {
		held, found := 0, false
		for _, e := range n.MACs() {
			if e.Peer == owner {
				held++
				found = found || bytes.Equal(e.MAC, want)
			}
		}
		return held, found
	}
	if held, ok := count(a.Router, b.Name, mac(2)); held > limit || !ok {
		t.Fatalf("a holds %d MACs behind b (limit %d), mac 2 among them: %v", held, limit, ok)
	}
	if _, ok := count(a.Router, a.Name, mac(1)); !ok {
		t.Fatal("a forgot its local mac 1")
	}
	if held, ok := count(b.Router, b.Name, mac(2)); held > limit || !ok {
		t.Fatalf("b holds %d local MACs (limit %d), mac 2 among them: %v", held, limit, ok)
	}
	if _, ok := count(b.Router, a.Name, mac(1)); !ok {
		t.Fatal("b forgot mac 1 behind a")
	}
	// b read every frame of the flood; a got what the underlay did not
	// drop.
	if r := b.Router.Stats().MACRefused; r < flood-limit {
		t.Fatalf("b refused %d learnings, want %d or more", r, flood-limit)
	}
	if r := a.Router.Stats().MACRefused; r == 0 {
		t.Fatal("a refused no learning")
	}

	// Known MACs still go straight to their host, not flooded.
	data := frame(mac(2), mac(1), 1000, 5)
	a.Device.Inject(data)
	if got := recv(t, b); !bytes.Equal(got, data) {
		t.Fatalf("b got % x", got[:20])
	}
	reply := frame(mac(1), mac(2), 1000, 6)
	b.Device.Inject(reply)
	if got := recv(t, a); !bytes.Equal(got, reply) {
		t.Fatalf("a got % x", got[:20])
	}
}
