package router_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/router/routertest"
)

// Tests wiring several routers through the in-memory harness.

const wait = 5 * time.Second

func fast(c *router.Config) {
	c.TickInterval = 5 * time.Millisecond
	c.FastHeartbeat = 10 * time.Millisecond
	c.SlowHeartbeat = 50 * time.Millisecond
	c.HeartbeatTimeout = 3 * time.Second // generous: the test machine may be loaded
	c.ProbeTimeout = 20 * time.Millisecond
	c.ProbeAttempts = 2
	c.MACLoopGuard = 10 * time.Millisecond
}

func addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 6783)
}

func mac(i byte) []byte { return []byte{2, 0, 0, 0, 0, i} }

// frame builds an Ethernet frame from MAC src to dst of n bytes.
func frame(dst, src []byte, n int, seed byte) []byte {
	f := make([]byte, n)
	copy(f, dst)
	copy(f[6:], src)
	f[12], f[13] = 0x88, 0xb5 // local experimental EtherType
	for i := 14; i < n; i++ {
		f[i] = seed + byte(i)
	}
	return f
}

var bcast = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// net starts n routers with device MTU mtu, connects them along edges and
// installs routes once all connections are established.
func startNet(t *testing.T, n, mtu int, edges [][2]int, shape func(*routertest.Network), mod func(*router.Config)) ([]*routertest.Node, routertest.Graph) {
	t.Helper()
	nw := routertest.NewNetwork(1)
	if shape != nil {
		shape(nw)
	}
	nodes := make([]*routertest.Node, n+1)
	for i := 1; i <= n; i++ {
		nodes[i] = routertest.StartNode(t, nw, mesh.PeerName(i), addr(i), mtu, func(c *router.Config) {
			fast(c)
			if mod != nil {
				mod(c)
			}
		})
	}
	g := routertest.Graph{}
	for k, e := range edges {
		ab, ba, err := routertest.Connect(nodes[e[0]], nodes[e[1]], uint64(100+k))
		if err != nil {
			t.Fatal(err)
		}
		established(t, ab, ba)
		g.Link(mesh.PeerName(e[0]), mesh.PeerName(e[1]))
	}
	routertest.InstallRoutes(g, nodes[1:]...)
	return nodes, g
}

func established(t *testing.T, conns ...mesh.OverlayConnection) {
	t.Helper()
	for _, c := range conns {
		select {
		case <-c.Established():
		case err := <-c.Failed():
			t.Fatalf("connection failed: %v", err)
		case <-time.After(wait):
			t.Fatalf("connection not established: %+v", c.Status())
		}
		if st := c.Status(); st.State != "established" {
			t.Fatalf("status %+v", st)
		}
	}
}

func recv(t *testing.T, n *routertest.Node) []byte {
	t.Helper()
	select {
	case f := <-n.Device.Delivered():
		return f
	case <-time.After(wait):
		t.Fatalf("node %s received nothing", n.Name)
		return nil
	}
}

// quiet checks that node receives nothing more for a short while.
func quiet(t *testing.T, nodes ...*routertest.Node) {
	t.Helper()
	time.Sleep(50 * time.Millisecond) // negative check: nothing may arrive
	for _, n := range nodes {
		select {
		case f := <-n.Device.Delivered():
			t.Fatalf("node %s received an unexpected frame % x", n.Name, f[:14])
		default:
		}
	}
}

func TestUnicastBetweenTwo(t *testing.T) {
	nodes, _ := startNet(t, 2, 1500, [][2]int{{1, 2}}, nil, nil)
	a, b := nodes[1], nodes[2]
	arp := frame(bcast, mac(1), 60, 1)
	a.Device.Inject(arp)
	if got := recv(t, b); !bytes.Equal(got, arp) {
		t.Fatalf("b got % x", got)
	}
	reply := frame(mac(1), mac(2), 60, 2)
	b.Device.Inject(reply)
	if got := recv(t, a); !bytes.Equal(got, reply) {
		t.Fatalf("a got % x", got)
	}
	data := frame(mac(2), mac(1), 1000, 3)
	a.Device.Inject(data)
	if got := recv(t, b); !bytes.Equal(got, data) {
		t.Fatalf("b got % x", got[:20])
	}
	quiet(t, a, b)
	macs := a.Router.MACs()
	if len(macs) != 2 || macs[0].Peer != a.Name || macs[1].Peer != b.Name {
		t.Fatalf("a's MACs %+v", macs)
	}
}

func TestBroadcastExactlyOnce(t *testing.T) {
	topologies := []struct {
		name  string
		n     int
		edges [][2]int
	}{
		{"star", 4, [][2]int{{1, 2}, {1, 3}, {1, 4}}},
		{"tree", 4, [][2]int{{1, 2}, {2, 3}, {2, 4}}},
		{"ring", 4, [][2]int{{1, 2}, {2, 3}, {3, 4}, {4, 1}}},
		{"triangle", 3, [][2]int{{1, 2}, {2, 3}, {3, 1}}},
	}
	for _, tc := range topologies {
		t.Run(tc.name, func(t *testing.T) {
			nodes, _ := startNet(t, tc.n, 1500, tc.edges, nil, nil)
			for src := 1; src <= tc.n; src++ {
				arp := frame(bcast, mac(byte(src)), 60, byte(src))
				nodes[src].Device.Inject(arp)
				for i := 1; i <= tc.n; i++ {
					if i != src {
						if got := recv(t, nodes[i]); !bytes.Equal(got, arp) {
							t.Fatalf("node %d got % x", i, got[:14])
						}
					}
				}
				quiet(t, nodes[1:]...)
			}
		})
	}
}

func TestRelayThroughMiddle(t *testing.T) {
	nodes, _ := startNet(t, 3, 1500, [][2]int{{1, 2}, {2, 3}}, nil, nil)
	a, mid, c := nodes[1], nodes[2], nodes[3]
	a.Device.Inject(frame(bcast, mac(1), 60, 1))
	recv(t, mid)
	recv(t, c)
	reply := frame(mac(1), mac(3), 200, 2)
	c.Device.Inject(reply)
	if got := recv(t, a); !bytes.Equal(got, reply) {
		t.Fatalf("a got % x", got[:14])
	}
	quiet(t, mid) // the middle peer relays without delivering
	if st := mid.Router.Stats(); st.Relayed == 0 {
		t.Fatalf("middle stats %+v", st)
	}
	for _, m := range mid.Router.MACs() {
		if bytes.Equal(m.MAC, mac(3)) {
			t.Fatal("middle learned a MAC of a frame it only relayed")
		}
	}
}

func TestMACMoveAndExpiry(t *testing.T) {
	nodes, _ := startNet(t, 3, 1500, [][2]int{{1, 2}, {1, 3}}, nil, func(c *router.Config) {
		c.MACMaxAge = 300 * time.Millisecond
	})
	owner := func() mesh.PeerName {
		for _, m := range nodes[1].Router.MACs() {
			if bytes.Equal(m.MAC, mac(9)) {
				return m.Peer
			}
		}
		return mesh.UnknownPeerName
	}
	nodes[2].Device.Inject(frame(bcast, mac(9), 60, 1))
	recv(t, nodes[1])
	if o := owner(); o != 2 {
		t.Fatalf("owner %v, want 2", o)
	}
	time.Sleep(20 * time.Millisecond) // past the loop guard: a real move
	nodes[3].Device.Inject(frame(bcast, mac(9), 60, 2))
	recv(t, nodes[1])
	if o := owner(); o != 3 {
		t.Fatalf("owner %v after the move, want 3", o)
	}
	if st := nodes[1].Router.Stats(); st.MACMoves != 1 {
		t.Fatalf("moves %d", st.MACMoves)
	}
	deadline := time.Now().Add(wait)
	for owner() != mesh.UnknownPeerName {
		if time.Now().After(deadline) {
			t.Fatal("MAC did not expire")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func shortTimeout(c *router.Config) { c.HeartbeatTimeout = 500 * time.Millisecond }

func TestHeartbeatFailureWhenBlocked(t *testing.T) {
	var nw *routertest.Network
	nodes, _ := startNet(t, 2, 1500, nil, func(n *routertest.Network) { nw = n }, shortTimeout)
	ab, ba, err := routertest.Connect(nodes[1], nodes[2], 7)
	if err != nil {
		t.Fatal(err)
	}
	established(t, ab, ba)
	nw.SetLinkBoth(addr(1), addr(2), routertest.LinkConfig{Blocked: true})
	for _, c := range []mesh.OverlayConnection{ab, ba} {
		select {
		case err := <-c.Failed():
			if !errors.Is(err, router.ErrHeartbeatTimeout) || err.Error() != "timed out waiting for UDP heartbeat" {
				t.Fatalf("failed with %v", err)
			}
		case <-time.After(wait):
			t.Fatal("no failure while blocked")
		}
		if st := c.Status(); st.State != "failed" || st.Reason == "" {
			t.Fatalf("status %+v", st)
		}
		c.Stop()
		c.Stop() // idempotent
	}
}

func TestNoEstablishmentOneWay(t *testing.T) {
	var nw *routertest.Network
	nodes, _ := startNet(t, 2, 1500, nil, func(n *routertest.Network) { nw = n }, shortTimeout)
	nw.SetLink(addr(2), addr(1), routertest.LinkConfig{Blocked: true})
	ab, ba, err := routertest.Connect(nodes[1], nodes[2], 8)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ab.Established():
		t.Fatal("established although b's heartbeats cannot reach a")
	case err := <-ab.Failed():
		if !errors.Is(err, router.ErrHeartbeatTimeout) {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("neither established nor failed")
	}
	if st := ba.Status(); st.State != "pending" {
		t.Fatalf("inbound side %+v", st)
	}
}

func TestInboundLearnsAddress(t *testing.T) {
	nodes, _ := startNet(t, 2, 1500, nil, nil, nil)
	// The inbound side is given a useless data port: it must learn the
	// address from heartbeats.
	var ab, ba mesh.OverlayConnection
	ab, err := nodes[1].Router.PrepareConnection(mesh.OverlayConnectionParams{
		LocalPeer: 1, RemotePeer: 2, Outbound: true, ConnUID: 9,
		RemoteAddr: addr(2), RemoteDataPort: addr(2).Port(),
		SendControl: func(m []byte) error { ba.HandleControl(m); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ba, err = nodes[2].Router.PrepareConnection(mesh.OverlayConnectionParams{
		LocalPeer: 2, RemotePeer: 1, ConnUID: 9,
		RemoteAddr:  netip.AddrPortFrom(addr(1).Addr(), 5555),
		SendControl: func(m []byte) error { ab.HandleControl(m); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := ba.Status(); st.Reason == "" {
		t.Fatalf("inbound status before heartbeats %+v", st)
	}
	ab.Confirm()
	ba.Confirm()
	established(t, ab, ba)
}

func TestPMTUProbing(t *testing.T) {
	const linkMTU = 1000
	nodes, _ := startNet(t, 2, 1500, [][2]int{{1, 2}}, func(n *routertest.Network) {
		n.SetLinkBoth(addr(1), addr(2), routertest.LinkConfig{MTU: linkMTU})
	}, nil)
	want := linkMTU - router.UnderlayOverhead - router.FrameOverhead
	waitMTU(t, nodes[1], 2, want)
	waitMTU(t, nodes[2], 1, want)
}

// waitRoom waits until n's connection to peer has verified a path MTU of
// at least mtu: frames larger than the MTU still being searched are
// dropped as too big, so a test that sends large frames at once waits.
func waitRoom(t *testing.T, n *routertest.Node, peer mesh.PeerName, mtu int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		st, ok := n.Router.ConnectionStatus(peer)
		if ok && st.MTU >= mtu {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: path MTU to %s stays at %d (want %d): %+v", n.Name, peer, st.MTU, mtu, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitMTU waits until n's connection to peer reports mtu.
func waitMTU(t *testing.T, n *routertest.Node, peer mesh.PeerName, mtu int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		st, ok := n.Router.ConnectionStatus(peer)
		if ok && st.MTU == mtu && st.Reason == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: status %+v, want MTU %d", n.Name, st, mtu)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ipFrame builds an IPv4/UDP frame whose IP packet is ipLen bytes.
func ipFrame(t *testing.T, dst, src []byte, ipLen int, df bool) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: 77, Protocol: layers.IPProtocolUDP,
		SrcIP: []byte{10, 32, 0, 1}, DstIP: []byte{10, 32, 0, 2}}
	if df {
		ip.Flags = layers.IPv4DontFragment
	}
	udp := &layers.UDP{SrcPort: 1, DstPort: 2}
	_ = udp.SetNetworkLayerForChecksum(ip)
	payload := make([]byte, ipLen-28)
	for i := range payload {
		payload[i] = byte(i * 13)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTooBigFrames(t *testing.T) {
	const linkMTU = 1000
	nodes, _ := startNet(t, 2, 1500, [][2]int{{1, 2}}, func(n *routertest.Network) {
		n.SetLinkBoth(addr(1), addr(2), routertest.LinkConfig{MTU: linkMTU})
	}, nil)
	a, b := nodes[1], nodes[2]
	mtu := linkMTU - router.UnderlayOverhead - router.FrameOverhead
	waitMTU(t, a, 2, mtu)
	b.Device.Inject(frame(bcast, mac(2), 60, 1)) // a learns mac 2 behind b
	recv(t, a)

	// DF set: an ICMP "fragmentation needed" comes back into a's device.
	a.Device.Inject(ipFrame(t, mac(2), mac(1), 1400, true))
	got := recv(t, a)
	p := gopacket.NewPacket(got, layers.LayerTypeEthernet, gopacket.Default)
	icmp, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !ok || icmp.TypeCode != layers.CreateICMPv4TypeCode(3, 4) || int(icmp.Seq) != mtu {
		t.Fatalf("not a frag-needed for %d: %v", mtu, p)
	}
	if ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); !ip.SrcIP.Equal([]byte{10, 32, 0, 2}) {
		t.Fatalf("ICMP from %v", ip.SrcIP)
	}

	// DF clear: fragments arrive at b and reassemble to the original.
	orig := ipFrame(t, mac(2), mac(1), 2500, false)
	a.Device.Inject(orig)
	var data []byte
	for more := true; more; {
		f := recv(t, b)
		ip := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if int(ip.Length) > mtu || int(ip.FragOffset)*8 != len(data) {
			t.Fatalf("fragment length %d offset %d", ip.Length, ip.FragOffset)
		}
		data = append(data, ip.Payload...)
		more = ip.Flags&layers.IPv4MoreFragments != 0
	}
	if !bytes.Equal(data, orig[14+20:]) {
		t.Fatal("reassembled payload differs")
	}

	// Not IPv4: dropped and counted.
	a.Device.Inject(frame(mac(2), mac(1), 1400, 9))
	quiet(t, a, b)
	if st := a.Router.Stats(); st.DropTooBig != 2 || st.ICMPSent != 1 || st.Fragmented != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestManyFramesByteIdentical(t *testing.T) {
	nodes, _ := startNet(t, 2, 1500, [][2]int{{1, 2}}, nil, nil)
	a, b := nodes[1], nodes[2]
	b.Device.Inject(frame(bcast, mac(2), 60, 0))
	recv(t, a)
	waitRoom(t, a, b.Name, 1514-14)
	rng := rand.New(rand.NewPCG(1, 2))
	const total = 3000
	sent := make([][]byte, total)
	for i := range sent {
		sent[i] = frame(mac(2), mac(1), 60+rng.IntN(1514-60+1), byte(i))
	}
	go func() {
		for _, f := range sent {
			a.Device.Inject(f)
		}
	}()
	for i := range total {
		if got := recv(t, b); !bytes.Equal(got, sent[i]) {
			t.Fatalf("frame %d differs: %d vs %d bytes", i, len(got), len(sent[i]))
		}
	}
	dg, batches := a.Transport.Sent()
	t.Logf("%d frames in %d datagrams, %d batches", total, dg, batches)
	if dg >= total {
		t.Errorf("no aggregation: %d datagrams for %d frames", dg, total)
	}
}

func TestTooBigAtRelay(t *testing.T) {
	// 1 - 2 - 3, where only the link 2-3 is small: the relay answers a DF
	// frame from 1 to 3 with an ICMP error that travels back to 1.
	const linkMTU = 1000
	nodes, _ := startNet(t, 3, 1500, [][2]int{{1, 2}, {2, 3}}, func(n *routertest.Network) {
		n.SetLinkBoth(addr(2), addr(3), routertest.LinkConfig{MTU: linkMTU})
	}, nil)
	a, mid, c := nodes[1], nodes[2], nodes[3]
	small := linkMTU - router.UnderlayOverhead - router.FrameOverhead
	waitMTU(t, mid, 3, small)
	waitMTU(t, a, 2, 1500)
	c.Device.Inject(frame(bcast, mac(3), 60, 1))
	recv(t, a)
	recv(t, mid)
	a.Device.Inject(ipFrame(t, mac(3), mac(1), 1400, true))
	got := recv(t, a)
	p := gopacket.NewPacket(got, layers.LayerTypeEthernet, gopacket.Default)
	icmp, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !ok || icmp.TypeCode != layers.CreateICMPv4TypeCode(3, 4) || int(icmp.Seq) != small {
		t.Fatalf("not a frag-needed for %d: %v", small, p)
	}
	if eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); !bytes.Equal(eth.SrcMAC, mac(3)) {
		t.Fatalf("ICMP from MAC %v", eth.SrcMAC)
	}
	// a still knows mac 3 behind peer 3, not behind the relay.
	for _, m := range a.Router.MACs() {
		if bytes.Equal(m.MAC, mac(3)) && m.Peer != 3 {
			t.Fatalf("mac 3 behind %v", m.Peer)
		}
	}
	quiet(t, c)
	if st := mid.Router.Stats(); st.ICMPSent != 1 || st.DropTooBig != 1 {
		t.Fatalf("relay stats %+v", st)
	}
}

func TestLossyLink(t *testing.T) {
	nodes, _ := startNet(t, 2, 1500, [][2]int{{1, 2}}, func(n *routertest.Network) {
		n.SetLinkBoth(addr(1), addr(2), routertest.LinkConfig{Loss: 0.3})
	}, nil)
	a, b := nodes[1], nodes[2]
	// Broadcasts until one gets through; then unicast frames flow, some lost.
	for i := 0; ; i++ {
		a.Device.Inject(frame(bcast, mac(1), 60, byte(i)))
		select {
		case <-b.Device.Delivered():
		case <-time.After(20 * time.Millisecond):
			if i < 100 {
				continue
			}
			t.Fatal("nothing crossed a 30% lossy link")
		}
		break
	}
	if st := b.Router.Stats(); st.DropBadDatagram != 0 || st.DropLoop != 0 {
		t.Fatalf("stats %+v", st)
	}
}
