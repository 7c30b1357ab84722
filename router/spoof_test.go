package router_test

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/router/routertest"
)

// TestSpoofedHeartbeatDoesNotMovePath (issue 16): on an unencrypted
// connection, a stranger at another address who saw the connection id in
// the clear forges heartbeats in the name of peer 1. Peer 2 must refuse
// them (counted in DropUnknownSender) and keep sending to peer 1: the
// stranger receives nothing but path challenges (whose nonce it cannot
// echo over peer 1's control connection), and every frame reaches peer 1.
func TestSpoofedHeartbeatDoesNotMovePath(t *testing.T) {
	var nw *routertest.Network
	nodes, _ := startNet(t, 2, 1500, [][2]int{{1, 2}}, func(n *routertest.Network) { nw = n }, nil)
	a, b := nodes[1], nodes[2]
	const uid = 100 // startNet's id for the first edge

	// Both routers learn where the other's MAC is.
	a.Device.Inject(frame(bcast, mac(1), 60, 0))
	recv(t, b)
	b.Device.Inject(frame(mac(1), mac(2), 60, 0))
	recv(t, a)

	attacker := nw.Transport(netip.MustParseAddrPort("10.0.0.66:6783"), 16)
	var heard atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		dgrams := make([]router.Datagram, 8)
		for i := range dgrams {
			dgrams[i].Buf = make([]byte, 65535)
		}
		for {
			n, err := attacker.ReadBatch(dgrams)
			for _, d := range dgrams[:n] {
				// A path challenge carries only a nonce the stranger
				// cannot echo over peer 1's control connection.
				if d.N < 2 || d.Buf[1] != router.TypePathChallenge {
					heard.Add(1)
				}
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { attacker.Close(); <-done })

	forged := make([]byte, router.HeaderLen+8+router.TagLen)
	const frames = 50
	before := b.Router.Stats().DropUnknownSender
	for i := range frames {
		router.PutHeader(forged, router.Header{Type: router.TypeHeartbeat, Sender: a.Name, Counter: uint64(1000 + i)})
		binary.BigEndian.PutUint64(forged[router.HeaderLen:], uid)
		router.PutTag(forged[router.HeaderLen+8:])
		if _, err := attacker.WriteBatch([]router.Datagram{{Buf: forged, N: len(forged), Addr: b.Addr}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		b.Device.Inject(frame(mac(1), mac(2), 60, byte(i)))
	}
	for i := range frames {
		if f := recv(t, a); f[14] != byte(i)+14 {
			t.Fatalf("frame %d: got the frame with seed %d", i, f[14]-14)
		}
	}
	time.Sleep(100 * time.Millisecond) // a few heartbeat intervals
	if n := heard.Load(); n != 0 {
		t.Fatalf("the stranger received %d datagrams other than path challenges", n)
	}
	if d := b.Router.Stats().DropUnknownSender - before; d < frames {
		t.Fatalf("DropUnknownSender went up by %d, want at least %d", d, frames)
	}
}
