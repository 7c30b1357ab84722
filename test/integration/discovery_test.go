package integration

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// TestDiscoveryHostileMember is issue 16's "discovery makes routers dial
// any address a member advertises", built from docs/protocol-control.md
// §1–§5 alone (member_test.go). A member on h3 (no password, so anyone who
// reaches the port) joins h1's router and gossips its topology:
// connections of its own to 60 made-up peers at ports of h2 (a third party
// with no router) that each report a connection back (as a member can
// make up, each made-up peer with a key of its own), one
// more that no peer reports back, and one to 127.0.0.1 inside h1's
// namespace. h1 must dial neither the one-sided address nor loopback, and
// the rest at most 8 at once, then 4 per second.
func TestDiscoveryHostileMember(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	h1.Launch(t)
	name, err := h1.PeerName()
	if err != nil {
		t.Fatal(err)
	}
	h1Name, err := net.ParseMAC(name)
	if err != nil {
		t.Fatal(err)
	}

	var victims []*countingListener
	for range 61 {
		victims = append(victims, nsListen(t, h2.Name, h2.Addr+":0"))
	}
	oneSided := victims[60]
	local := nsListen(t, h1.Name, "127.0.0.1:0")

	mk := newMemberKey(99)
	member := mk.name
	self := topoEntry{key: mk, uid: 99, version: 5, nick: "member"}
	self.conns = append(self.conns, topoConn{peer: macName(h1Name), addr: netip.MustParseAddrPort(h1.PeerAddr()), outbound: true})
	var others []topoEntry
	seq := uint64(1000)
	backTo := func(k memberKey) topoEntry {
		return topoEntry{key: k, uid: seq, version: 1, nick: "fake",
			conns: []topoConn{{peer: member, addr: netip.MustParseAddrPort(h3.Addr + ":40000")}}}
	}
	fake := func() memberKey { seq++; return newMemberKey(seq) }
	for _, v := range victims[:60] {
		k := fake()
		self.conns = append(self.conns, topoConn{peer: k.name, addr: v.addr, outbound: true})
		others = append(others, backTo(k))
	}
	self.conns = append(self.conns, topoConn{peer: fake().name, addr: oneSided.addr, outbound: true})
	k := fake()
	self.conns = append(self.conns, topoConn{peer: k.name, addr: local.addr, outbound: true})
	others = append(others, backTo(k))

	dial := nsDialer(t, h3.Name)
	nc, err := dial(net.ParseIP(h3.Addr), &net.TCPAddr{IP: net.ParseIP(h1.Addr), Port: h1.Port})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	m := joinMember(t, nc, mk, "member")
	if err := m.send(encodeTopo(append([]topoEntry{self}, others...))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(3 * time.Second)
	elapsed := time.Since(start)

	var dials, dialled int64
	for _, v := range victims[:60] {
		if n := v.accepted.Load(); n > 0 {
			dials += n
			dialled++
		}
	}
	t.Logf("in %v h1 dialled %d of 60 two-sided addresses, %d times", elapsed, dialled, dials)
	if n := oneSided.accepted.Load(); n != 0 {
		t.Errorf("h1 dialled the address of a connection no peer reports back %d times", n)
	}
	if n := local.accepted.Load(); n != 0 {
		t.Errorf("h1 dialled 127.0.0.1 in its own namespace %d times", n)
	}
	if limit := 8 + int64(elapsed/(250*time.Millisecond)) + 2; dials == 0 || dials > limit {
		t.Errorf("h1 dialled two-sided addresses %d times in %v, want 1..%d", dials, elapsed, limit)
	}
}

// countingListener accepts TCP connections, counts and closes them.
type countingListener struct {
	addr     netip.AddrPort
	accepted atomic.Int64
}

// nsListen listens on addr inside the network namespace ns.
func nsListen(t *testing.T, ns, addr string) *countingListener {
	t.Helper()
	var ln net.Listener
	if err := netns.Inside(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	cl := &countingListener{addr: ln.Addr().(*net.TCPAddr).AddrPort()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cl.accepted.Add(1)
			c.Close()
		}
	}()
	return cl
}
