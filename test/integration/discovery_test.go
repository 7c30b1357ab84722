package integration

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// TestDiscoveryHostileMember is issue 16's "discovery makes routers dial
// any address a member advertises", built from docs/protocol-control.md
// §1–§5 alone. A member on h3 (no password, so anyone who reaches the
// port) joins h1's router and gossips one topology message: connections of
// its own to 60 made-up peers at ports of h2 (a third party with no
// router) that each report a connection back (as a member can forge), one
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

	const member = 0x7a0000000099
	var fake uint64 = 0x7a0000001000
	self := topoEntry{name: member, uid: 99, version: 5, nick: "member"}
	self.conns = append(self.conns, topoConn{peer: macName(h1Name), addr: netip.MustParseAddrPort(h1.PeerAddr()), outbound: true})
	var others []topoEntry
	backTo := func(p uint64) topoEntry {
		return topoEntry{name: p, uid: p, version: 1, nick: "fake",
			conns: []topoConn{{peer: member, addr: netip.MustParseAddrPort(h3.Addr + ":40000")}}}
	}
	for _, v := range victims[:60] {
		fake++
		self.conns = append(self.conns, topoConn{peer: fake, addr: v.addr, outbound: true})
		others = append(others, backTo(fake))
	}
	fake++
	self.conns = append(self.conns, topoConn{peer: fake, addr: oneSided.addr, outbound: true})
	fake++
	self.conns = append(self.conns, topoConn{peer: fake, addr: local.addr, outbound: true})
	others = append(others, backTo(fake))

	dial := nsDialer(t, h3.Name)
	nc, err := dial(net.ParseIP(h3.Addr), &net.TCPAddr{IP: net.ParseIP(h1.Addr), Port: h1.Port})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	msgs := [][]byte{encodeFeatures(member, 99, "member"), encodeTopo(append([]topoEntry{self}, others...))}
	out := []byte("weft\x01\x01\x00")
	for _, m := range msgs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(m)))
		out = append(out, m...)
	}
	var hdr [7]byte
	if _, err := nc.Write(out); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(nc, hdr[:]); err != nil || string(hdr[:4]) != "weft" {
		t.Fatalf("h1's header: %q, %v", hdr, err)
	}
	go io.Copy(io.Discard, nc)
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

func macName(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

func putName(b []byte, n uint64) []byte {
	return append(b, byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// encodeFeatures is the features message, §3, with no extra features.
func encodeFeatures(name, uid uint64, nick string) []byte {
	b := putName([]byte{0}, name)
	b = binary.BigEndian.AppendUint64(b, uid)
	b = binary.BigEndian.AppendUint64(b, 1) // connection nonce
	b = binary.BigEndian.AppendUint16(b, 6784)
	b = append(append(b, byte(len(nick))), nick...)
	return binary.BigEndian.AppendUint16(b, 0)
}

type topoConn struct {
	peer     uint64
	addr     netip.AddrPort
	outbound bool
}

type topoEntry struct {
	name, uid, version uint64
	nick               string
	conns              []topoConn
}

// encodeTopo is a topology message, §5; every connection established.
func encodeTopo(entries []topoEntry) []byte {
	b := binary.BigEndian.AppendUint16([]byte{3}, uint16(len(entries)))
	for _, e := range entries {
		b = putName(b, e.name)
		b = binary.BigEndian.AppendUint64(b, e.uid)
		b = binary.BigEndian.AppendUint64(b, e.version)
		b = append(append(b, byte(len(e.nick))), e.nick...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.conns)))
		for _, c := range e.conns {
			b = putName(b, c.peer)
			flags := byte(2)
			if c.outbound {
				flags |= 1
			}
			ip := c.addr.Addr().AsSlice()
			b = append(append(append(b, flags), byte(len(ip))), ip...)
			b = binary.BigEndian.AppendUint16(b, c.addr.Port())
		}
	}
	return b
}
