package mesh

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const converge = 5 * time.Second

func discovery(c *Config) { c.Discovery = true }

func TestNodesConvergeWithDiscovery(t *testing.T) {
	var nodes []*testNode
	for i := 1; i <= 5; i++ {
		nodes = append(nodes, startNode(t, i, discovery))
	}
	// A line of targets; discovery completes the mesh.
	for i := 0; i+1 < len(nodes); i++ {
		nodes[i].connect(t, nodes[i+1])
	}
	eventually(t, converge, func() error { return directMesh(nodes...) })
	st := nodes[0].Status()
	if len(st.Peers) != 5 || st.Name != testName(1) || st.UID != nodes[0].UID() {
		t.Fatalf("status: %+v", st)
	}
	if nick := nodes[0].PeerNickName(testName(4)); nick != "node4" {
		t.Fatalf("nickname of 4 = %q", nick)
	}
	// Overlay control messages were delivered both ways (a connection
	// replaced by a simultaneous dial may have delivered one more).
	eventually(t, converge, func() error {
		for _, n := range nodes {
			from := map[string]bool{}
			for _, m := range n.ov.received() {
				from[strings.SplitN(m, ":hello", 2)[0]] = true
			}
			if len(from) != len(nodes)-1 {
				return fmt.Errorf("%v received control messages from %v", n.Name(), from)
			}
		}
		return nil
	})
}

func TestNodesConvergeWithoutDiscovery(t *testing.T) {
	var nodes []*testNode
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, startNode(t, i, nil))
	}
	nodes[0].connect(t, nodes[1])
	nodes[2].connect(t, nodes[1])
	eventually(t, converge, func() error {
		if err := routeIs(nodes[0], 3, 2); err != nil {
			return err
		}
		return routeIs(nodes[2], 1, 2)
	})
	if _, ok := nodes[0].conn(3); ok {
		t.Fatal("connected to 3 without discovery")
	}
}

func TestDiscoveryFromOnePeer(t *testing.T) {
	a := startNode(t, 1, discovery)
	b := startNode(t, 2, discovery)
	hub := startNode(t, 3, discovery)
	hub.connect(t, a, b)
	eventually(t, converge, func() error { return directMesh(a, b, hub) })
	d := startNode(t, 4, discovery)
	d.connect(t, hub)
	eventually(t, converge, func() error { return directMesh(a, b, hub, d) })
	if got := d.Targets(); !slices.Equal(got, []string{hub.addr()}) {
		t.Fatalf("targets = %v", got)
	}
}

func TestBlockedDataPathRoutesViaThird(t *testing.T) {
	a := startNode(t, 1, nil)
	b := startNode(t, 2, nil)
	c := startNode(t, 3, nil)
	a.ov.block(3, true)
	c.ov.block(1, true)
	a.connect(t, b, c)
	c.connect(t, b)
	eventually(t, converge, func() error {
		if err := routeIs(a, 3, 2); err != nil {
			return err
		}
		return routeIs(c, 1, 2)
	})
	// The failed direct connection shows why.
	eventually(t, converge, func() error {
		for _, cs := range a.Status().Connections {
			if cs.Address == c.addr() && cs.State == StateRetrying && strings.Contains(cs.Reason, "timed out waiting for UDP heartbeat") {
				return nil
			}
		}
		return fmt.Errorf("no retrying connection to 3 in %+v", a.Status().Connections)
	})
	a.ov.block(3, false)
	c.ov.block(1, false)
	eventually(t, converge, func() error {
		if err := routeIs(a, 3, 3); err != nil {
			return err
		}
		return routeIs(c, 1, 1)
	})
}

func TestForget(t *testing.T) {
	a := startNode(t, 1, nil)
	b := startNode(t, 2, nil)
	a.connect(t, b)
	eventually(t, converge, func() error { return directMesh(a, b) })
	if err := a.Forget([]string{b.addr()}); err != nil {
		t.Fatal(err)
	}
	if got := a.Targets(); len(got) != 0 {
		t.Fatalf("targets after forget: %v", got)
	}
	eventually(t, converge, func() error {
		if _, ok := a.conn(2); ok {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	// Several backoff periods later it is still not reconnected.
	time.Sleep(400 * time.Millisecond)
	if st := a.Status(); len(st.Connections) != 0 {
		t.Fatalf("connections after forget: %+v", st.Connections)
	}
	// Connect brings it back.
	a.connect(t, b)
	eventually(t, converge, func() error { return directMesh(a, b) })
}

func TestConnectValidates(t *testing.T) {
	a := startNode(t, 1, nil)
	err := a.Connect([]string{"127.0.0.1:1", "1.2.3.4:x"}, false)
	if err == nil || err.Error() != `invalid peer address "1.2.3.4:x": port must be a number from 1 to 65535` {
		t.Fatalf("err = %v", err)
	}
	if len(a.Targets()) != 0 {
		t.Fatal("targets changed by a failed Connect")
	}
	if err := a.Connect([]string{"127.0.0.1:1", "127.0.0.1:2"}, false); err != nil {
		t.Fatal(err)
	}
	if err := a.Connect([]string{"127.0.0.1:2", "127.0.0.1:3"}, true); err != nil {
		t.Fatal(err)
	}
	if got := a.Targets(); !slices.Equal(got, []string{"127.0.0.1:2", "127.0.0.1:3"}) {
		t.Fatalf("targets after replace = %v", got)
	}
	// Nothing listens there: the attempts are retried with a reason.
	eventually(t, converge, func() error {
		for _, cs := range a.Status().Connections {
			if cs.State == StateRetrying && strings.Contains(cs.Reason, "connection refused") {
				return nil
			}
		}
		return fmt.Errorf("no refused attempt: %+v", a.Status().Connections)
	})
}

func TestConnectToSelf(t *testing.T) {
	a := startNode(t, 1, nil)
	a.connect(t, a)
	eventually(t, converge, func() error {
		cs := a.Status().Connections
		if len(cs) == 1 && cs[0].State == StateFailed && cs[0].Reason == ErrConnectToSelf.Error() {
			return nil
		}
		return fmt.Errorf("connections %+v", cs)
	})
}

func TestConnLimit(t *testing.T) {
	a := startNode(t, 1, func(c *Config) { c.ConnLimit = 1 })
	b := startNode(t, 2, nil)
	c := startNode(t, 3, nil)
	b.connect(t, a)
	eventually(t, converge, func() error { return directMesh(a, b) })
	c.connect(t, a)
	eventually(t, converge, func() error {
		for _, cs := range c.Status().Connections {
			if cs.State == StateRetrying && strings.Contains(cs.Reason, "too many connections") {
				return nil
			}
		}
		return fmt.Errorf("connections %+v", c.Status().Connections)
	})
	if n := len(a.Status().Connections); n != 1 {
		t.Fatalf("a has %d connections", n)
	}
}

func TestReconnectAfterRestart(t *testing.T) {
	a := startNode(t, 1, nil)
	b := startNode(t, 2, nil)
	a.connect(t, b)
	eventually(t, converge, func() error { return directMesh(a, b) })
	addr := b.addr()
	b.Stop()
	eventually(t, converge, func() error {
		if _, ok := a.conn(2); ok {
			return fmt.Errorf("still connected to the stopped node")
		}
		return nil
	})
	b2 := startNode(t, 2, func(c *Config) { c.ListenAddr = addr })
	eventually(t, converge, func() error {
		if err := directMesh(a, b2); err != nil {
			return err
		}
		for _, p := range a.Status().Peers {
			if p.Name == 2 && p.UID != b2.UID() {
				return fmt.Errorf("a still has the old incarnation of 2")
			}
		}
		return nil
	})
}

func TestOnPeerGone(t *testing.T) {
	a := startNode(t, 1, nil)
	b := startNode(t, 2, nil)
	c := startNode(t, 3, nil)
	var mu sync.Mutex
	var gone []PeerName
	a.OnPeerGone(func(p PeerName) {
		mu.Lock()
		gone = append(gone, p)
		mu.Unlock()
	})
	a.connect(t, b)
	b.connect(t, c)
	eventually(t, converge, func() error { return routeIs(a, 3, 2) })
	c.Stop()
	eventually(t, converge, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(gone, []PeerName{testName(3)}) {
			return fmt.Errorf("gone = %v", gone)
		}
		return nil
	})
}

func TestGossipChannel(t *testing.T) {
	nodes := []*testNode{startNode(t, 1, nil), startNode(t, 2, nil), startNode(t, 3, nil), startNode(t, 4, nil)}
	gs := make([]*setGossiper, len(nodes))
	chans := make([]*GossipChannel, len(nodes))
	for i, n := range nodes {
		gs[i] = newSetGossiper()
		chans[i] = n.RegisterGossip("test", gs[i])
	}
	// Ring 1-2-3-4-1: two paths from 1 to 3.
	for i := range nodes {
		nodes[i].connect(t, nodes[(i+1)%len(nodes)])
	}
	eventually(t, converge, func() error {
		for _, n := range nodes {
			for _, o := range nodes {
				if _, ok := n.ov.routes.Load().Unicast(o.Name()); !ok && n != o {
					return fmt.Errorf("%v has no route to %v", n.Name(), o.Name())
				}
			}
		}
		// Control routes are published with the data routes.
		return nil
	})

	gs[0].add("x")
	chans[0].GossipBroadcast(setData{"x": {}})
	eventually(t, converge, func() error {
		for i, g := range gs[1:] {
			if !g.has("x") {
				return fmt.Errorf("node %d lacks x", i+2)
			}
		}
		return nil
	})
	time.Sleep(50 * time.Millisecond)
	for i, g := range gs[1:] {
		g.mu.Lock()
		n := g.bcasts["x"]
		g.mu.Unlock()
		if n != 1 {
			t.Errorf("node %d got the broadcast %d times", i+2, n)
		}
	}

	if err := chans[0].GossipUnicast(testName(3), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	eventually(t, converge, func() error {
		gs[2].mu.Lock()
		defer gs[2].mu.Unlock()
		if !slices.Equal(gs[2].unicasts, []string{testName(1).String() + ":hi"}) {
			return fmt.Errorf("unicasts at 3: %v", gs[2].unicasts)
		}
		return nil
	})

	// Periodic full state reaches everyone.
	gs[3].mu.Lock()
	gs[3].fullState = true
	gs[3].mu.Unlock()
	gs[3].add("y")
	eventually(t, converge, func() error {
		for i, g := range gs {
			if !g.has("y") {
				return fmt.Errorf("node %d lacks y", i+1)
			}
		}
		return nil
	})

	// Neighbour gossip spreads by relaying deltas.
	gs[1].add("z")
	chans[1].GossipNeighbours(setData{"z": {}})
	eventually(t, converge, func() error {
		for i, g := range gs {
			if !g.has("z") {
				return fmt.Errorf("node %d lacks z", i+1)
			}
		}
		return nil
	})
}

func TestStartPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n, err := NewNode(testConfig(1, newFakeOverlay()))
	if err != nil {
		t.Fatal(err)
	}
	n.cfg.ListenAddr = ln.Addr().String()
	if err := n.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start = %v", err)
	}
	n.Stop()
}

func TestNewNodeValidates(t *testing.T) {
	if _, err := NewNode(Config{Overlay: newFakeOverlay()}); err == nil {
		t.Error("no name accepted")
	}
	if _, err := NewNode(Config{Name: 1}); err == nil {
		t.Error("no overlay accepted")
	}
}

func TestHeartbeatTimeout(t *testing.T) {
	a := startNode(t, 1, func(c *Config) { c.HeartbeatTimeout = 200 * time.Millisecond })
	// A peer that handshakes and then says nothing.
	nc, err := net.Dial("tcp", a.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	mute := hsConfig(features{Name: 9, NickName: "mute", UID: 9, ConnNonce: 1}, header{2, 2, 0}, nil)
	mute.initiator = true
	_, err = handshake(nc, mute)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, converge, func() error {
		if _, ok := a.conn(9); !ok {
			return fmt.Errorf("not connected")
		}
		return nil
	})
	eventually(t, converge, func() error {
		if _, ok := a.conn(9); ok {
			return fmt.Errorf("still connected")
		}
		return nil
	})
}

func TestDuplicateConnectionsResolve(t *testing.T) {
	a := startNode(t, 1, nil)
	b := startNode(t, 2, nil)
	// Both dial each other at once; one connection survives on both ends.
	a.connect(t, b)
	b.connect(t, a)
	eventually(t, converge, func() error {
		if err := directMesh(a, b); err != nil {
			return err
		}
		ca, _ := a.conn(2)
		cb, _ := b.conn(1)
		if ca.Outbound == cb.Outbound {
			return fmt.Errorf("ends disagree: a outbound %v, b outbound %v", ca.Outbound, cb.Outbound)
		}
		if !ca.Outbound {
			return fmt.Errorf("kept the connection dialled by the higher name")
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond)
	for _, n := range []*testNode{a, b} {
		if cs := n.Status().Connections; len(cs) != 1 {
			t.Fatalf("%v connections: %+v", n.Name(), cs)
		}
	}
}

// TestHandshakeFailuresShowInStatus dials fake peers that answer with a
// bad header and checks the reason shown for the target.
func TestHandshakeFailuresShowInStatus(t *testing.T) {
	for _, tc := range []struct {
		name, reply, want string
	}{
		{"version", string(header{3, 4, 0}.encode()), "protocol version mismatch: we speak 2..2, peer speaks 3..4"},
		{"password", string(header{2, 2, flagPassword}.encode()), "authentication failed: peer requires a password, we have none"},
		{"not weft", "HTTP/1.1 400 Bad\r\n", "remote is not a weft peer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Write([]byte(tc.reply))
					c.Read(make([]byte, 64))
					c.Close()
				}
			}()
			a := startNode(t, 1, nil)
			if err := a.Connect([]string{ln.Addr().String()}, false); err != nil {
				t.Fatal(err)
			}
			eventually(t, converge, func() error {
				for _, cs := range a.Status().Connections {
					if cs.State == StateRetrying && strings.Contains(cs.Reason, tc.want) {
						return nil
					}
				}
				return fmt.Errorf("connections %+v", a.Status().Connections)
			})
		})
	}
}
