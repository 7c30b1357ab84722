package router_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/router/routertest"
)

// TestPingPaths pings over a line 1-2-3: 2 answers over the direct path,
// 3 through 2; an unknown peer has no route.
func TestPingPaths(t *testing.T) {
	nodes, _ := startNet(t, 3, 1500, [][2]int{{1, 2}, {2, 3}}, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, tc := range []struct {
		peer, via mesh.PeerName
		direct    bool
	}{{2, 2, true}, {3, 2, false}} {
		res, err := nodes[1].Router.Ping(ctx, tc.peer)
		if err != nil {
			t.Fatalf("ping %v: %v", tc.peer, err)
		}
		if res.Peer != tc.peer || res.SentVia != tc.via || res.AnsweredVia != tc.via || res.Direct() != tc.direct {
			t.Errorf("ping %v: %+v, want via %v, direct %v", tc.peer, res, tc.via, tc.direct)
		}
		if res.RTT <= 0 || res.RTT > wait {
			t.Errorf("ping %v: RTT %v", tc.peer, res.RTT)
		}
		// One clock for all nodes: the offset is below the round trip.
		if res.ClockOffset > res.RTT || -res.ClockOffset > res.RTT {
			t.Errorf("ping %v: clock offset %v with RTT %v", tc.peer, res.ClockOffset, res.RTT)
		}
	}
	if _, err := nodes[1].Router.Ping(ctx, 99); !errors.Is(err, router.ErrNoPeerRoute) {
		t.Errorf("ping of an unknown peer: %v, want ErrNoPeerRoute", err)
	}
	if _, err := nodes[1].Router.Ping(ctx, 1); err == nil {
		t.Error("ping of ourselves succeeded")
	}
	short, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	<-short.Done()
	if _, err := nodes[1].Router.Ping(short, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ping with an expired context: %v", err)
	}
	// Nothing reached a device.
	quiet(t, nodes[1:]...)
}

// TestPeerStatsCountTraffic checks the per-peer counters against frames
// sent between two routers.
func TestPeerStatsCountTraffic(t *testing.T) {
	nodes, _ := startNet(t, 2, 1500, [][2]int{{1, 2}}, nil, nil)
	a, b := nodes[1], nodes[2]
	before := peerStats(t, a.Router, 2)
	const n = 10
	for i := range n {
		f := frame(bcast, mac(1), 100, byte(i))
		a.Device.Inject(f)
		if got := recv(t, b); !bytes.Equal(got, f) {
			t.Fatalf("b got % x", got)
		}
	}
	after := peerStats(t, a.Router, 2)
	if d := after.TxFrames - before.TxFrames; d != n {
		t.Errorf("a's TxFrames to b grew by %d, want %d", d, n)
	}
	if d := after.TxBytes - before.TxBytes; d < n*100 {
		t.Errorf("a's TxBytes to b grew by %d, want at least %d", d, n*100)
	}
	if got := peerStats(t, b.Router, 1); got.RxFrames < n || got.RxBytes < n*100 || got.RxDatagrams == 0 {
		t.Errorf("b's counters of a: %+v", got)
	}
	if !after.Established || after.Since.IsZero() || after.MTU == 0 || after.Addr == "" {
		t.Errorf("a's stats of b: %+v", after)
	}
	if st := a.Router.Stats(); st.Flooded < n {
		t.Errorf("Flooded %d, want at least %d", st.Flooded, n)
	}
	// The probes of the path MTU search measure the round trip.
	deadline := time.Now().Add(wait)
	for peerStats(t, a.Router, 2).RTT == 0 || !peerStats(t, a.Router, 2).MTUVerified {
		if time.Now().After(deadline) {
			t.Fatalf("no RTT or verified MTU: %+v", peerStats(t, a.Router, 2))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func peerStats(t *testing.T, r *router.Router, peer mesh.PeerName) router.PeerStats {
	t.Helper()
	for _, s := range r.PeerStats() {
		if s.Peer == peer {
			return s
		}
	}
	t.Fatalf("no stats of peer %v", peer)
	return router.PeerStats{}
}

// TestLinkFailuresRemembered blocks the only link: the connection fails
// for want of heartbeats, and LinkFailures says so.
func TestLinkFailuresRemembered(t *testing.T) {
	var nw *routertest.Network
	nodes, _ := startNet(t, 2, 1500, nil, func(n *routertest.Network) { nw = n }, shortTimeout)
	ab, ba, err := routertest.Connect(nodes[1], nodes[2], 9)
	if err != nil {
		t.Fatal(err)
	}
	established(t, ab, ba)
	nw.SetLinkBoth(addr(1), addr(2), routertest.LinkConfig{Blocked: true})
	select {
	case <-ab.Failed():
	case <-time.After(wait):
		t.Fatal("connection did not fail")
	}
	f := nodes[1].Router.LinkFailures()
	if len(f) != 1 || f[0].Peer != 2 || f[0].Reason != router.ErrHeartbeatTimeout.Error() || f[0].At.IsZero() {
		t.Errorf("LinkFailures %+v", f)
	}
}

// TestHostilePingRecords sends malformed and stray ping and pong records
// from a neighbour: each is dropped and counted, or ignored, and pings
// still work.
func TestHostilePingRecords(t *testing.T) {
	nodes, _ := startNet(t, 2, 1500, [][2]int{{1, 2}}, nil, nil)
	a, b := nodes[1], nodes[2]
	send := func(recs ...[]byte) {
		t.Helper()
		dg := make([]byte, router.HeaderLen, 2048)
		router.PutHeader(dg, router.Header{Type: router.TypeFrames, Sender: b.Name, Counter: 1 << 40})
		for _, r := range recs {
			dg = append(dg, r...)
		}
		dg = append(dg, make([]byte, router.TagLen)...)
		if _, err := b.Transport.WriteBatch([]router.Datagram{{Buf: dg, N: len(dg), Addr: a.Addr}}); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(typ uint8, src, dst mesh.PeerName, body []byte) []byte {
		r := make([]byte, router.RecordHeaderLen+len(body))
		router.PutRecord(r, typ, src, dst, body)
		return r
	}
	before := a.Router.Stats()
	send(
		rec(router.RecordPing, b.Name, a.Name, make([]byte, 3)),    // short ping: bad
		rec(router.RecordPong, b.Name, a.Name, make([]byte, 5)),    // short pong: bad
		rec(router.RecordPong, b.Name, a.Name, make([]byte, 16)),   // pong of no ping: ignored
		rec(router.RecordPing, a.Name, b.Name, make([]byte, 8)),    // our own: a loop
		rec(router.RecordPing, b.Name, 99, make([]byte, 8)),        // to nobody: no route
		rec(router.RecordPong, b.Name, a.Name, make([]byte, 1000)), // long pong: bad
	)
	deadline := time.Now().Add(wait)
	for {
		st := a.Router.Stats()
		bad, loop, noRoute := st.DropBadDatagram-before.DropBadDatagram, st.DropLoop-before.DropLoop, st.DropNoRoute-before.DropNoRoute
		if bad == 3 && loop == 1 && noRoute == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drops: bad %d (want 3), loop %d (want 1), no route %d (want 1)", bad, loop, noRoute)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if res, err := a.Router.Ping(ctx, b.Name); err != nil || !res.Direct() {
		t.Fatalf("ping after hostile records: %+v %v", res, err)
	}
	quiet(t, a, b)
}

// TestPingsBounded: with 64 pings in flight on a path that answers none,
// the next is refused at once.
func TestPingsBounded(t *testing.T) {
	var nw *routertest.Network
	nodes, _ := startNet(t, 2, 1500, [][2]int{{1, 2}}, func(n *routertest.Network) { nw = n }, nil)
	nw.SetLinkBoth(addr(1), addr(2), routertest.LinkConfig{Blocked: true})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	errs := make(chan error, 64)
	for range 64 {
		go func() {
			_, err := nodes[1].Router.Ping(ctx, 2)
			errs <- err
		}()
	}
	// Wait for the 64 to take their places (a probe that came first
	// would take one), then try one more.
	time.Sleep(200 * time.Millisecond)
	deadline := time.Now().Add(wait / 2)
	for {
		time.Sleep(20 * time.Millisecond)
		short, c := context.WithTimeout(context.Background(), time.Millisecond)
		_, err := nodes[1].Router.Ping(short, 2)
		c()
		if errors.Is(err, router.ErrTooManyPings) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("65th ping: %v, want ErrTooManyPings", err)
		}
	}
	cancel()
	for range 64 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("blocked ping: %v, want canceled", err)
		}
	}
}
