package mesh

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

// entryOf returns n's entry for peer p, if it has one.
func entryOf(n *testNode, p PeerName) (PeerStatus, bool) {
	for _, ps := range n.Status().Peers {
		if ps.Name == p {
			return ps, true
		}
	}
	return PeerStatus{}, false
}

// A member may only speak for itself: entries it makes up for another
// peer (at the highest version, without that peer's connections, under a
// new nickname) are refused and counted, and the real peer's entry and
// routes stay.
func TestMemberCannotSpeakForAnother(t *testing.T) {
	a := startNode(t, 1, nil)
	d := startNode(t, 2, nil)
	d.connect(t, a)
	eventually(t, converge, func() error { return directMesh(a, d) })
	real, _ := entryOf(d, a.Name())

	forged := peerEntry{Name: a.Name(), NickName: "evil", UID: a.UID(), Version: math.MaxUint64}
	signEntry(testIdentity(9), &forged) // the member's own key
	forged.Name = a.Name()
	keep := forged
	keep.Key = testIdentity(1).Public() // a's key, the member's signature
	joinAsMember(t, d, 9, []peerEntry{forged, keep, signed(9, peerEntry{NickName: "member", UID: 99, Version: 1,
		Conns: []connEntry{{Peer: d.Name(), Established: true}}})})

	eventually(t, converge, func() error {
		if got := d.TopologyRefusals().BadSignature; got != 2 {
			return fmt.Errorf("%d entries refused for bad signatures, want 2", got)
		}
		return nil
	})
	got, ok := entryOf(d, a.Name())
	if !ok || got.Version != real.Version && got.Version < real.Version || got.NickName != "node1" || got.UID != a.UID() {
		t.Fatalf("a's entry on d after forgery: %+v (before: %+v)", got, real)
	}
	if err := routeIs(d, a.Name(), a.Name()); err != nil {
		t.Fatal(err)
	}
	// a's own updates still reach d.
	b := startNode(t, 3, nil)
	a.connect(t, b)
	eventually(t, converge, func() error { return routeIs(d, b.Name(), a.Name()) })
}

// A peer that claims a name in the handshake without holding its key is
// refused.
func TestHandshakeImpostorRefused(t *testing.T) {
	victim, member := testIdentity(1), testIdentity(9)
	impostor := &Identity{priv: member.priv, pub: victim.pub, name: victim.name}
	a := hsConfig(features{Name: 9, UID: 9, ConnNonce: 1}, header{2, 2, 0}, nil)
	a.identity = impostor
	b := hsConfig(features{Name: 2, UID: 2, ConnNonce: 2}, header{2, 2, 0}, nil)
	_, _, _, eb := runHandshakes(t, a, b)
	if !errors.Is(eb, ErrIdentityProof) {
		t.Fatalf("impostor accepted or refused for another reason: %v", eb)
	}
	// With the password too.
	a.psk, b.psk = testPSK(t, 4), testPSK(t, 4)
	if _, _, _, eb = runHandshakes(t, a, b); !errors.Is(eb, ErrIdentityProof) {
		t.Fatalf("impostor with the password: %v", eb)
	}
}

// sybils returns n signed entries of peers of a member's making, each
// connected to the member, and the member's own entry connected to to and
// to all of them.
func sybils(member int, to PeerName, n int) []peerEntry {
	self := peerEntry{NickName: "member", UID: 99, Version: 1, Conns: []connEntry{{Peer: to, Established: true}}}
	var out []peerEntry
	for i := range n {
		seq := 1000 + i
		self.Conns = append(self.Conns, connEntry{Peer: testName(seq), Established: true})
		out = append(out, signed(seq, peerEntry{NickName: "sybil", UID: uint64(seq), Version: 1,
			Conns: []connEntry{{Peer: testName(member), Established: true}}}))
	}
	return append([]peerEntry{signed(member, self)}, out...)
}

// A member announcing more peers than MaxPeers fills the topology up to
// the limit and no further; its connection and the real peers stay.
func TestTopologyPeerLimit(t *testing.T) {
	a := startNode(t, 1, nil)
	d := startNode(t, 2, func(c *Config) { c.MaxPeers = 40 })
	d.connect(t, a)
	eventually(t, converge, func() error { return directMesh(a, d) })
	joinAsMember(t, d, 9, sybils(9, d.Name(), 100))
	eventually(t, converge, func() error {
		if got := d.TopologyRefusals().OverPeerLimit; got < 100-40+3 {
			return fmt.Errorf("%d entries refused over the limit", got)
		}
		return nil
	})
	if n := len(d.Status().Peers); n > 40 {
		t.Fatalf("%d peers in a topology limited to 40", n)
	}
	if _, ok := d.conn(testName(9)); !ok {
		t.Fatal("the member's connection was closed")
	}
	if err := directMesh(a, d); err != nil {
		t.Fatal(err)
	}
}

// A connection that sends more entries than its budget has the rest
// dropped (to come again with the next gossip), not the connection.
func TestTopologyBudget(t *testing.T) {
	d := startNode(t, 2, func(c *Config) { c.MaxPeers, c.TopologyBudget = 50, 1 })
	ch := joinAsMember(t, d, 9, sybils(9, d.Name(), 30))
	// The burst (MaxPeers) is spent by now; 30 more new versions exceed
	// the budget of one entry a second.
	more := sybils(9, d.Name(), 30)
	for i := range more {
		e := more[i]
		e.Version = 2
		seq := 1000 + i - 1
		if i == 0 {
			seq = 9
		}
		more[i] = signed(seq, e)
	}
	for _, m := range encodeTopology(more) {
		if err := ch.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, converge, func() error {
		if got := d.TopologyRefusals().OverBudget; got == 0 {
			return fmt.Errorf("no entries dropped over the budget")
		}
		return nil
	})
	time.Sleep(100 * time.Millisecond)
	if _, ok := d.conn(testName(9)); !ok {
		t.Fatal("the member's connection was closed")
	}
}

// A peer's real entry replaces a placeholder; unsigned placeholders are
// never gossiped.
func TestPlaceholdersNotGossiped(t *testing.T) {
	msgs := encodeTopology([]peerEntry{{Name: testName(1), UID: 1}, signed(2, peerEntry{UID: 2, Version: 1})})
	got, err := decodeTopology(msgs[0])
	if err != nil || len(got) != 1 || got[0].Name != testName(2) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
}

// A member cannot send gossip in another peer's name: a broadcast or a
// unicast not signed by its source, and neighbour gossip naming another
// source, are dropped and counted; the connection stays.
func TestGossipSourceForgery(t *testing.T) {
	a := startNode(t, 1, nil)
	d := startNode(t, 2, nil)
	gd := newSetGossiper()
	d.RegisterGossip("test", gd)
	a.RegisterGossip("test", newSetGossiper())
	d.connect(t, a)
	eventually(t, converge, func() error { return directMesh(a, d) })
	ch := joinAsMember(t, d, 9, []peerEntry{signed(9, peerEntry{NickName: "member", UID: 99, Version: 1,
		Conns: []connEntry{{Peer: d.Name(), Established: true}}})})
	member := testIdentity(9)
	forged := [][]byte{
		// A broadcast in a's name, signed by the member.
		signGossip(member, encodeGossip(tagGossipBroadcast, "test", a.Name(), [][]byte{[]byte("bcast")})),
		// A unicast to d in a's name, signed by the member.
		signGossip(member, putNames([]byte{tagGossipUnicast, 4, 't', 'e', 's', 't'}, a.Name(), d.Name(), "uni")),
		// Neighbour gossip naming a as its source.
		encodeGossip(tagGossip, "test", a.Name(), [][]byte{[]byte("gossip")}),
		// A broadcast in a's name with a's signature over something else.
		append(encodeGossip(tagGossipBroadcast, "test", a.Name(), [][]byte{[]byte("bcast2")}),
			testIdentity(1).sign(sigContextGossip, []byte("other"))...),
	}
	for _, m := range forged {
		if err := ch.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	// Then the member's own broadcast, which is fine.
	if err := ch.WriteMsg(signGossip(member, encodeGossip(tagGossipBroadcast, "test", member.Name(), [][]byte{[]byte("own")}))); err != nil {
		t.Fatal(err)
	}
	eventually(t, converge, func() error {
		if !gd.has("own") {
			return fmt.Errorf("the member's own broadcast did not arrive")
		}
		return nil
	})
	if got := d.GossipRefused(); got != uint64(len(forged)) {
		t.Fatalf("%d gossip messages refused, want %d", got, len(forged))
	}
	for _, k := range []string{"bcast", "bcast2", "gossip"} {
		if gd.has(k) {
			t.Errorf("forged %q reached the gossiper", k)
		}
	}
	gd.mu.Lock()
	unicasts := gd.unicasts
	gd.mu.Unlock()
	if len(unicasts) != 0 {
		t.Errorf("forged unicasts reached the gossiper: %v", unicasts)
	}
	if _, ok := d.conn(testName(9)); !ok {
		t.Fatal("the member's connection was closed")
	}
}
