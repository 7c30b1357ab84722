package mesh

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func TestDiscoverable(t *testing.T) {
	for _, tc := range []struct {
		addr          string
		allowLoopback bool
		want          bool
	}{
		{"10.99.0.2:6783", false, true},
		{"192.0.2.7:6783", false, true},
		{"[2001:db8::1]:6783", false, true},
		{"127.0.0.1:6783", false, false},
		{"127.0.0.1:6783", true, true},
		{"127.3.4.5:22", false, false},
		{"[::1]:6783", false, false},
		{"[::ffff:127.0.0.1]:6783", false, false},
		{"169.254.169.254:80", false, false},
		{"169.254.169.254:80", true, false},
		{"[fe80::1]:6783", false, false},
		{"224.0.0.1:6783", false, false},
		{"239.1.2.3:6783", true, false},
		{"[ff02::1]:6783", false, false},
		{"[ff01::1]:6783", false, false},
		{"0.0.0.0:6783", true, false},
		{"[::]:6783", true, false},
		{"255.255.255.255:6783", true, false},
		{"10.99.0.2:0", false, false},
	} {
		if got := discoverable(netip.MustParseAddrPort(tc.addr), tc.allowLoopback); got != tc.want {
			t.Errorf("discoverable(%s, loopback %v) = %v, want %v", tc.addr, tc.allowLoopback, got, tc.want)
		}
	}
	if discoverable(netip.AddrPort{}, true) {
		t.Error("zero address discoverable")
	}
}

func TestTokenBucket(t *testing.T) {
	b := tokenBucket{burst: 3, every: 100 * time.Millisecond}
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if d := b.take(t0); d != 0 {
			t.Fatalf("take %d of the burst: wait %v", i, d)
		}
	}
	if d := b.take(t0.Add(30 * time.Millisecond)); d != 70*time.Millisecond {
		t.Fatalf("empty bucket: wait %v, want 70ms", d)
	}
	if d := b.take(t0.Add(100 * time.Millisecond)); d != 0 {
		t.Fatalf("after one interval: wait %v", d)
	}
	if d := b.take(t0.Add(150 * time.Millisecond)); d != 50*time.Millisecond {
		t.Fatalf("wait %v, want 50ms", d)
	}
	// A long pause refills to the burst, no more.
	later := t0.Add(time.Hour)
	for i := range 3 {
		if d := b.take(later); d != 0 {
			t.Fatalf("take %d after a pause: wait %v", i, d)
		}
	}
	if d := b.take(later); d != 100*time.Millisecond {
		t.Fatalf("after the refilled burst: wait %v", d)
	}
}

// trap is a TCP listener on loopback that counts and closes what it
// accepts: an address a hostile member wants routers to dial.
type trap struct {
	ln       net.Listener
	accepted atomic.Int64
}

func newTrap(t *testing.T) *trap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &trap{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tr.accepted.Add(1)
			c.Close()
		}
	}()
	return tr
}

func (tr *trap) addrPort() netip.AddrPort { return addrPortOf(tr.ln.Addr()) }

// joinAsMember connects to n as the peer of testIdentity(seq) with the
// documented handshake and sends entries as topology messages, then
// keeps the connection up (heartbeats, reading and discarding) until the
// test ends. It returns the open channel.
func joinAsMember(t *testing.T, n *testNode, seq int, entries []peerEntry) msgChannel {
	t.Helper()
	name := testName(seq)
	nc, err := net.Dial("tcp", n.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	res, err := handshake(nc, handshakeConfig{
		local:     features{NickName: "member", UID: 99, ConnNonce: 1, DataPort: 6784},
		identity:  testIdentity(seq),
		header:    header{minVersion: ProtocolMinVersion, maxVersion: ProtocolMaxVersion},
		initiator: true, timeout: 2 * time.Second, maxMsg: DefaultMaxMessageSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range encodeTopology(entries) {
		if err := res.ch.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			if _, err := res.ch.ReadMsg(); err != nil {
				return
			}
		}
	}()
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if res.ch.WriteMsg([]byte{tagHeartbeat}) != nil {
					return
				}
			}
		}
	}()
	eventually(t, converge, func() error {
		if _, ok := n.conn(name); !ok {
			return fmt.Errorf("member %v not connected", name)
		}
		return nil
	})
	return res.ch
}

// A member that reports a connection to a peer which does not report it
// back does not make us dial the address.
func TestDiscoveryNeedsBothEnds(t *testing.T) {
	d := startNode(t, 1, discovery)
	tr := newTrap(t)
	joinAsMember(t, d, 9, []peerEntry{signed(9, peerEntry{NickName: "member", UID: 99, Version: 10, Conns: []connEntry{
		{Peer: d.Name(), Addr: netip.MustParseAddrPort("127.0.0.1:1"), Established: true},
		{Peer: testName(10), Addr: tr.addrPort(), Outbound: true, Established: true},
	}})})
	time.Sleep(500 * time.Millisecond)
	if got := tr.accepted.Load(); got != 0 {
		t.Fatalf("a one-sided connection made the node dial %v %d times", tr.addrPort(), got)
	}
}

// Connections reported by both ends (as a member can make up, with peers
// of its own making, each with a key of its own) are dialled at most DiscoveryBurst at
// once, then one per DiscoveryInterval.
func TestDiscoveryRateLimited(t *testing.T) {
	d := startNode(t, 1, func(c *Config) {
		c.Discovery = true
		c.DiscoveryBurst, c.DiscoveryInterval = 4, 200*time.Millisecond
	})
	self := peerEntry{NickName: "member", UID: 99, Version: 10, Conns: []connEntry{
		{Peer: d.Name(), Addr: netip.MustParseAddrPort("127.0.0.1:1"), Established: true},
	}}
	var traps []*trap
	var entries []peerEntry
	for i := range 30 {
		tr := newTrap(t)
		traps = append(traps, tr)
		p := testName(100 + i)
		self.Conns = append(self.Conns, connEntry{Peer: p, Addr: tr.addrPort(), Outbound: true, Established: true})
		entries = append(entries, signed(100+i, peerEntry{NickName: "fake", UID: uint64(1000 + i), Version: 1, Conns: []connEntry{
			{Peer: testName(9), Addr: netip.MustParseAddrPort("127.0.0.1:2"), Established: true},
		}}))
	}
	start := time.Now()
	joinAsMember(t, d, 9, append([]peerEntry{signed(9, self)}, entries...))
	time.Sleep(500 * time.Millisecond)
	elapsed := time.Since(start)
	var dials int64
	for _, tr := range traps {
		dials += tr.accepted.Load()
	}
	// Burst plus one per interval, plus one for timing slack.
	limit := int64(4 + elapsed/(200*time.Millisecond) + 1)
	if dials == 0 || dials > limit {
		t.Fatalf("%d dials of discovered addresses in %v, want 1..%d", dials, elapsed, limit)
	}
}

// A router that listens on all addresses (as in production) does not
// dial loopback addresses it learns from the topology.
func TestDiscoveryIgnoresLoopbackWhenListeningWide(t *testing.T) {
	a := startNode(t, 1, discovery)
	hub := startNode(t, 3, discovery)
	hub.connect(t, a)
	eventually(t, converge, func() error { return directMesh(a, hub) })
	d := startNode(t, 4, func(c *Config) {
		c.Discovery = true
		c.ListenAddr = "0.0.0.0:0"
	})
	d.connect(t, hub)
	eventually(t, converge, func() error { return routeIs(d, a.Name(), hub.Name()) })
	time.Sleep(300 * time.Millisecond)
	if _, ok := d.conn(a.Name()); ok {
		t.Fatal("d dialled the loopback address of 1 it learnt from the hub")
	}
	for _, cs := range d.Status().Connections {
		if cs.Peer == a.Name() {
			t.Fatalf("d has a target for 1: %+v", cs)
		}
	}
}
