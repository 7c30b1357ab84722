package meshtest

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftnet/weft/mesh"
)

func TestClockFiresInOrder(t *testing.T) {
	c := NewClock(nil)
	var got []int
	c.AfterFunc(3*time.Second, func() { got = append(got, 3) })
	c.AfterFunc(time.Second, func() { got = append(got, 1) })
	c.AfterFunc(time.Second, func() { got = append(got, 2) }) // same instant: creation order
	stopped := c.AfterFunc(2*time.Second, func() { got = append(got, 99) })
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	tk := c.NewTicker(time.Second)
	c.Advance(2500 * time.Millisecond)
	if want := []int{1, 2}; !equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if at := <-tk.C(); !at.Equal(Epoch.Add(time.Second)) {
		t.Fatalf("ticker holds +%v, want the first tick (+1s): later ones are dropped", at.Sub(Epoch))
	}
	if got := c.Since(Epoch); got != 2500*time.Millisecond {
		t.Fatalf("clock at +%v, want +2.5s", got)
	}
	c.Advance(time.Second)
	if want := []int{1, 2, 3}; !equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// knows reports whether every running node's control routes reach every
// other running node.
func allReach(nodes ...*Node) bool {
	for _, a := range nodes {
		for _, b := range nodes {
			if !a.Reachable(b.Name()) {
				return false
			}
		}
	}
	return true
}

func TestHarnessJoinPartitionRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(t, 1)
		h.Net.SetLatency(5 * time.Millisecond)
		a, b, c := h.Start(0), h.Start(1), h.Start(2)
		h.Connect(a, b)
		h.Connect(b, c)
		dataRoute := func() bool {
			r := c.Overlay.Routes()
			if r == nil {
				return false
			}
			_, ok := r.Unicast(a.Name())
			return ok
		}
		took, ok := h.RunUntil(10*time.Second, func() bool { return allReach(a, b, c) && dataRoute() })
		if !ok {
			t.Fatalf("three nodes in a line did not converge in 10 s: %v", a.Status().Peers)
		}
		// Two dials of one round trip, handshakes of a few round trips
		// and the 100 ms update delay: well under a second.
		if took > time.Second {
			t.Fatalf("convergence took %v of virtual time", took)
		}
		if r := c.Overlay.Routes(); r == nil {
			t.Fatal("no routes handed to c's overlay")
		} else if next, ok := r.Unicast(a.Name()); !ok || next != b.Name() {
			t.Fatalf("c routes to a via %v (%v), want b", next, ok)
		}

		// A silent partition: found by the heartbeat timeout (60 s).
		h.Net.Partition(b.IP, c.IP, true)
		took, ok = h.RunUntil(2*time.Minute, func() bool { return !a.Reachable(c.Name()) })
		if !ok {
			t.Fatal("a still reaches c two minutes into the partition")
		}
		if took < 50*time.Second || took > 70*time.Second {
			t.Fatalf("partition noticed after %v, want about the 60 s heartbeat timeout", took)
		}
		h.Net.Partition(b.IP, c.IP, false)
		if _, ok := h.RunUntil(time.Minute, func() bool { return allReach(a, b, c) }); !ok {
			t.Fatal("no reconvergence a minute after the partition healed")
		}

		// A restart: a new incarnation replaces the old one everywhere.
		oldUID := c.UID()
		h.Restart(c)
		if _, ok := h.RunUntil(time.Minute, func() bool {
			for _, p := range a.Status().Peers {
				if p.Name == c.Name() && p.UID == c.UID() && p.UID != oldUID {
					return allReach(a, b, c)
				}
			}
			return false
		}); !ok {
			t.Fatal("a does not know c's new incarnation a minute after the restart")
		}
	})
}

func TestNetworkBreakResetsConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(t, 1)
		a, b := h.Start(0), h.Start(1)
		h.Connect(a, b)
		if _, ok := h.RunUntil(5*time.Second, func() bool { return allReach(a, b) }); !ok {
			t.Fatal("no convergence")
		}
		if n := h.Net.Break(a.IP, b.IP); n != 1 {
			t.Fatalf("Break reset %d connections, want 1", n)
		}
		// The reset is seen at once; a redials after its backoff.
		h.Run(time.Millisecond)
		if st := statesOf(a); st[mesh.StateEstablished] != 0 {
			t.Fatalf("a still shows an established connection after the reset: %v", st)
		}
		if _, ok := h.RunUntil(30*time.Second, func() bool { return allReach(a, b) }); !ok {
			t.Fatal("no reconnection after the reset")
		}
	})
}

func statesOf(n *Node) map[string]int {
	out := map[string]int{}
	for _, c := range n.Status().Connections {
		out[c.State]++
	}
	return out
}

func TestNetworkLossDelays(t *testing.T) {
	converge := func(loss float64) time.Duration {
		var took time.Duration
		synctest.Test(t, func(t *testing.T) {
			h := New(t, 3)
			h.Net.SetLatency(5 * time.Millisecond)
			h.Net.SetLoss(loss)
			var nodes []*Node
			for i := range 6 {
				nodes = append(nodes, h.Start(i))
			}
			for i := range nodes {
				h.Connect(nodes[i], nodes[(i+1)%len(nodes)])
			}
			var ok bool
			took, ok = h.RunUntil(time.Minute, func() bool { return allReach(nodes...) })
			if !ok {
				t.Fatalf("no convergence in a minute with loss %v", loss)
			}
		})
		return took
	}
	clean, lossy := converge(0), converge(0.3)
	// A lost write arrives one 200 ms retransmission timeout late: with
	// 30% of them lost, the handshakes and gossip along the ring take
	// several timeouts longer.
	if lossy < clean+200*time.Millisecond {
		t.Fatalf("convergence took %v with 30%% loss, %v without: loss did not delay it", lossy, clean)
	}
	t.Logf("ring of 6: %v without loss, %v with 30%% loss", clean, lossy)
}
