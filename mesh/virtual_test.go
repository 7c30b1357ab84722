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
