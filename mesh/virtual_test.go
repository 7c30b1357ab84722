package mesh_test

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/mesh/meshtest"
)

// Ports of node_test.go's convergence, restart and peer-gone tests to the
// in-memory harness: no sockets, no sleeps, timings in virtual time.

// directMesh reports whether every node holds a registered connection to
// every other one.
func directMesh(nodes ...*meshtest.Node) bool {
	for _, a := range nodes {
		peers := map[mesh.PeerName]bool{}
		for _, c := range a.Status().Connections {
			if c.State == mesh.StateEstablished {
				peers[c.Peer] = true
			}
		}
		for _, b := range nodes {
			if a != b && !peers[b.Name()] {
				return false
			}
		}
	}
	return true
}

func TestVirtualNodesConvergeWithDiscovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := meshtest.New(t, 1)
		h.Edit = func(_ int, c *mesh.Config) { c.Discovery = true }
		var nodes []*meshtest.Node
		for i := range 5 {
			nodes = append(nodes, h.Start(i))
		}
		// A line of targets; discovery completes the mesh.
		for i := 0; i+1 < len(nodes); i++ {
			h.Connect(nodes[i], nodes[i+1])
		}
		took, ok := h.RunUntil(time.Minute, func() bool { return directMesh(nodes...) })
		if !ok {
			t.Fatalf("no full mesh after a minute: %+v", nodes[0].Status().Connections)
		}
		// Each discovery hop costs an update delay, gossip and a dial:
		// a few hundred milliseconds with 1 ms links, not seconds.
		if took > 2*time.Second {
			t.Fatalf("full mesh took %v of virtual time", took)
		}
		t.Logf("5 nodes in a line became a full mesh in %v (virtual)", took)
		if got := len(nodes[0].Status().Peers); got != 5 {
			t.Fatalf("node 0 knows %d peers, want 5", got)
		}
	})
}

func TestVirtualReconnectAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := meshtest.New(t, 1)
		a, b := h.Start(1), h.Start(2)
		h.Connect(a, b)
		if _, ok := h.RunUntil(10*time.Second, func() bool { return directMesh(a, b) }); !ok {
			t.Fatal("no connection")
		}
		h.Stop(b)
		// The close reaches a after one link latency.
		if _, ok := h.RunUntil(time.Second, func() bool { return !a.Reachable(b.Name()) }); !ok {
			t.Fatal("a still reaches the stopped node")
		}
		old := b.UID()
		h.Restart(b)
		// a redials with backoff: InitialBackoff (2 s) grown at most
		// 1.5x per failure while b was down, and b was down only briefly.
		took, ok := h.RunUntil(time.Minute, func() bool {
			if !directMesh(a, b) {
				return false
			}
			for _, p := range a.Status().Peers {
				if p.Name == b.Name() {
					return p.UID == b.UID() && p.UID != old
				}
			}
			return false
		})
		if !ok {
			t.Fatal("a does not hold b's new incarnation a minute after the restart")
		}
		if took > 5*time.Second {
			t.Fatalf("reconnection took %v of virtual time, want within the first backoff", took)
		}
	})
}

func TestVirtualOnPeerGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := meshtest.New(t, 1)
		a, b, c := h.Start(1), h.Start(2), h.Start(3)
		var mu sync.Mutex
		var gone []mesh.PeerName
		a.OnPeerGone(func(p mesh.PeerName) {
			mu.Lock()
			gone = append(gone, p)
			mu.Unlock()
		})
		h.Connect(a, b)
		h.Connect(b, c)
		if _, ok := h.RunUntil(10*time.Second, func() bool { return a.Reachable(c.Name()) }); !ok {
			t.Fatal("a does not reach c")
		}
		h.Stop(c)
		took, ok := h.RunUntil(10*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(gone) > 0
		})
		if !ok {
			t.Fatal("OnPeerGone not called within 10 s of c stopping")
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(gone, []mesh.PeerName{c.Name()}) {
			t.Fatalf("gone = %v, want [%v]", gone, c.Name())
		}
		// b's changed entry needs b's update delay, a's its own: 2x100 ms
		// and two latencies.
		if took > 500*time.Millisecond {
			t.Fatalf("peer gone noticed after %v of virtual time", took)
		}
	})
}

// knowsEveryone reports whether every node holds every node's current
// entry.
func knowsEveryone(nodes ...*meshtest.Node) bool {
	for _, x := range nodes {
		uid, v, _ := x.PeerVersion(x.Name())
		for _, n := range nodes {
			if u, w, ok := n.PeerVersion(x.Name()); !ok || u != uid || w < v {
				return false
			}
		}
	}
	return true
}

func TestVirtualRestGossipIsSummaries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := meshtest.New(t, 1)
		var nodes []*meshtest.Node
		for i := range 12 {
			nodes = append(nodes, h.Start(i))
		}
		for i := range nodes {
			h.Connect(nodes[i], nodes[(i+1)%len(nodes)])
		}
		if _, ok := h.RunUntil(time.Minute, func() bool { return knowsEveryone(nodes...) }); !ok {
			t.Fatal("no convergence")
		}
		h.Run(time.Minute) // past the first periodic gossip
		var mism0, sent0 uint64
		for _, n := range nodes {
			mism0 += n.SummaryMismatches()
			sent0 += h.Net.BytesSent(n.IP)
		}
		h.Run(5 * time.Minute)
		var mism, sent uint64
		for _, n := range nodes {
			mism += n.SummaryMismatches()
			sent += h.Net.BytesSent(n.IP)
		}
		if mism != mism0 {
			t.Fatalf("%d summary mismatches at rest", mism-mism0)
		}
		// Per router and 30 s, to each of 2 neighbours: one summary (13
		// bytes) and one heartbeat (1 byte), each with its 4-byte length:
		// 2 * 22 bytes. The whole topology would be about 12 entries of
		// over 100 bytes each.
		perRouter := float64(sent-sent0) / float64(len(nodes)) / (5 * 60)
		if want := 2.0 * 22 / 30; perRouter > want*1.01 {
			t.Fatalf("%.2f bytes/s per router at rest, want at most %.2f", perRouter, want)
		}
		t.Logf("%.2f control bytes/s per router at rest", perRouter)
	})
}

func TestVirtualSummaryRepairsDroppedEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := meshtest.New(t, 1)
		// Node 0 checks at most one entry per second per connection
		// after a burst of four; links breaking elsewhere overrun it.
		h.Edit = func(seq int, c *mesh.Config) {
			if seq == 0 {
				c.MaxPeers, c.TopologyBudget = 4, 1
			}
		}
		var nodes []*meshtest.Node
		for i := range 4 {
			nodes = append(nodes, h.Start(i))
		}
		// A line 0-1-2-3 where 3 dials 2: everything node 0 learns
		// comes from node 1.
		h.Connect(nodes[0], nodes[1])
		h.Connect(nodes[1], nodes[2])
		h.Connect(nodes[3], nodes[2])
		if _, ok := h.RunUntil(time.Minute, func() bool { return knowsEveryone(nodes...) }); !ok {
			t.Fatal("no convergence")
		}
		for range 6 { // each restart changes the entries of 2 and 3
			h.Restart(nodes[3])
			h.Run(300 * time.Millisecond)
		}
		h.Run(5 * time.Second)
		if nodes[0].TopologyRefusals().OverBudget == 0 {
			t.Fatal("no entry dropped over budget: the test does not exercise the repair")
		}
		if knowsEveryone(nodes...) {
			t.Fatal("node 0 holds every entry although some were dropped: nothing to repair")
		}
		took, ok := h.RunUntil(5*time.Minute, func() bool { return knowsEveryone(nodes...) })
		if !ok {
			t.Fatal("node 0 never got the entries it dropped")
		}
		if nodes[1].SummaryMismatches() == 0 {
			t.Fatal("repaired without a summary mismatch")
		}
		t.Logf("repaired after %v more", took)
	})
}

func TestVirtualDiscoveryMaxConns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := meshtest.New(t, 1)
		h.Edit = func(_ int, c *mesh.Config) { c.Discovery, c.DiscoveryMaxConns = true, 3 }
		var nodes []*meshtest.Node
		for i := range 12 {
			nodes = append(nodes, h.Start(i))
		}
		for i := range nodes {
			h.Connect(nodes[i], nodes[(i+1)%len(nodes)])
		}
		if _, ok := h.RunUntil(time.Minute, func() bool { return knowsEveryone(nodes...) }); !ok {
			t.Fatal("no convergence")
		}
		h.Run(2 * time.Minute) // discovery has had time to dial everyone
		total := 0
		for _, n := range nodes {
			conns := 0
			for _, c := range n.Status().Connections {
				if c.State == mesh.StateEstablished {
					conns++
				}
			}
			// Two ring links, plus discovered ones up to the bound; a
			// router may be dialled beyond it by others.
			if conns < 2 || conns > len(nodes)-1 {
				t.Fatalf("node %d holds %d connections", n.Seq, conns)
			}
			total += conns
		}
		// Without the bound discovery makes a full mesh: 11 each. With
		// it a router stops dialling at 3, so the mean stays well below.
		if mean := float64(total) / float64(len(nodes)); mean > 5 {
			t.Fatalf("%.1f connections per router on average, want at most 5", mean)
		}
		if !knowsEveryone(nodes...) {
			t.Fatal("the mesh does not know itself after discovery")
		}
	})
}
