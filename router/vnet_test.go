package router_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/router/routertest"
)

// vnetDevice makes a fake device carry virtio-net headers: injected and
// delivered byte strings are header followed by frame.
type vnetDevice struct{ *routertest.Device }

func (d vnetDevice) VnetHdr() bool { return true }
func (d vnetDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := d.Device.Read(bufs, sizes, offset-router.VnetHdrLen)
	for i := range n {
		sizes[i] -= router.VnetHdrLen
	}
	return n, err
}
func (d vnetDevice) Write(bufs [][]byte, offset int) (int, error) {
	return d.Device.Write(bufs, offset-router.VnetHdrLen)
}

// startOffloadNet starts routers 1..len(vnet) in a line 1-2-...-n, router i
// with a virtio-net device when vnet[i-1], all links limited to linkMTU.
func startOffloadNet(t *testing.T, linkMTU int, vnet ...bool) []*routertest.Node {
	t.Helper()
	nw := routertest.NewNetwork(7)
	n := len(vnet)
	for i := 1; i < n; i++ {
		nw.SetLinkBoth(addr(i), addr(i+1), routertest.LinkConfig{MTU: linkMTU})
	}
	nodes := make([]*routertest.Node, n+1)
	for i := 1; i <= n; i++ {
		nodes[i] = routertest.StartNode(t, nw, mesh.PeerName(i), addr(i), 1406, func(c *router.Config) {
			fast(c)
			if vnet[i-1] {
				c.Device = vnetDevice{c.Device.(*routertest.Device)}
			}
		})
	}
	g := routertest.Graph{}
	for i := 1; i < n; i++ {
		ab, ba, err := routertest.Connect(nodes[i], nodes[i+1], uint64(200+i))
		if err != nil {
			t.Fatal(err)
		}
		established(t, ab, ba)
		g.Link(mesh.PeerName(i), mesh.PeerName(i+1))
	}
	routertest.InstallRoutes(g, nodes[1:]...)
	return nodes
}

// vnetHdr builds a virtio_net_hdr.
func vnetHdr(flags, gsoType uint8, hdrLen, gsoSize, csumStart, csumOff uint16) []byte {
	h := make([]byte, router.VnetHdrLen)
	h[0], h[1] = flags, gsoType
	binary.LittleEndian.PutUint16(h[2:], hdrLen)
	binary.LittleEndian.PutUint16(h[4:], gsoSize)
	binary.LittleEndian.PutUint16(h[6:], csumStart)
	binary.LittleEndian.PutUint16(h[8:], csumOff)
	return h
}

// udpFrame is an IPv4 UDP frame from mac(src) to mac(dst) whose UDP
// checksum field holds only the pseudo-header sum, as the kernel leaves it
// for checksum offload; it also returns the frame with the full checksum.
func udpFrame(t *testing.T, src, dst byte, payload int) (partial, full []byte) {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: mac(src), DstMAC: mac(dst), EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: []byte{10, 2, 1, src}, DstIP: []byte{10, 2, 1, dst}}
	udp := &layers.UDP{SrcPort: 4000, DstPort: 5000}
	udp.SetNetworkLayerForChecksum(ip)
	data := make([]byte, payload)
	for i := range data {
		data[i] = byte(i * 7)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(data)); err != nil {
		t.Fatal(err)
	}
	full = bytes.Clone(buf.Bytes())
	partial = bytes.Clone(full)
	// Pseudo-header sum: source, destination, protocol, UDP length.
	var sum uint32
	for _, w := range [][]byte{partial[26:28], partial[28:30], partial[30:32], partial[32:34]} {
		sum += uint32(binary.BigEndian.Uint16(w))
	}
	sum += 17 + uint32(binary.BigEndian.Uint16(partial[38:40]))
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(partial[40:42], uint16(sum))
	return partial, full
}

func TestSuperFrameCrossesSmallPathInSegments(t *testing.T) {
	// 1 -- 2 -- 3, all with offloads, links of MTU 1000: a 30000-byte
	// super-frame is cut into segments at each hop and arrives whole, with
	// its header, in one device write.
	nodes := startOffloadNet(t, 1000, true, true, true)
	a, c := nodes[1], nodes[3]
	for _, hop := range [][2]int{{1, 2}, {2, 3}} {
		deadline := time.Now().Add(wait)
		for {
			st, _ := nodes[hop[0]].Router.ConnectionStatus(mesh.PeerName(hop[1]))
			if st.MTU > 0 && st.MTU+router.FrameOverhead+router.UnderlayOverhead <= 1000 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("path MTU %d->%d not found: %+v", hop[0], hop[1], st)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Teach 1 that mac(3) is behind 3.
	c.Device.Inject(append(make([]byte, router.VnetHdrLen), frame(bcast, mac(3), 60, 1)...))
	recv(t, a)
	recv(t, nodes[2])
	hdr := vnetHdr(1, 1 /* TCPV4 */, 54, 1348, 34, 16)
	blob := append(bytes.Clone(hdr), frame(mac(3), mac(1), 30000, 9)...)
	a.Device.Inject(blob)
	if got := recv(t, c); !bytes.Equal(got, blob) {
		t.Fatalf("3 got %d bytes, header % x; want %d bytes, header % x", len(got), got[:10], len(blob), hdr)
	}
	quiet(t, nodes[2])
	for i := 1; i <= 3; i++ {
		if st := nodes[i].Router.Stats(); st.DropReassembly != 0 || st.DropTooBig != 0 {
			t.Errorf("node %d dropped: %+v", i, st)
		}
	}
}

func TestManySuperFramesArriveInOrder(t *testing.T) {
	nodes := startOffloadNet(t, 1500, true, true)
	a, b := nodes[1], nodes[2]
	superFramesInOrder(t, a, b, 50, func(i int) int { return 2000 + i*1200 })
}

// superFramesInOrder teaches a that mac(2) is behind b, sends n TCP
// super-frames (frame i of size(i) bytes) from a's device and checks that
// b's device gets each whole, with its header, in order.
func superFramesInOrder(t *testing.T, a, b *routertest.Node, n int, size func(int) int) {
	t.Helper()
	b.Device.Inject(append(make([]byte, router.VnetHdrLen), frame(bcast, mac(2), 60, 1)...))
	recv(t, a)
	hdr := vnetHdr(1, 1 /* TCPV4 */, 54, 1348, 34, 16)
	var sent [][]byte
	for i := range n {
		blob := append(bytes.Clone(hdr), frame(mac(2), mac(1), size(i), byte(i))...)
		sent = append(sent, blob)
		a.Device.Inject(blob)
	}
	for i, want := range sent {
		if got := recv(t, b); !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
}

func TestPlainDeviceGetsChecksumCompletedAndNoUnsegmentableSuperFrames(t *testing.T) {
	// 1 has offloads, 2 does not.
	nodes := startOffloadNet(t, 1500, true, false)
	a, b := nodes[1], nodes[2]
	b.Device.Inject(frame(bcast, mac(2), 60, 1))
	recv(t, a)

	partial, full := udpFrame(t, 1, 2, 900)
	a.Device.Inject(append(vnetHdr(1, 0, 0, 0, 34, 6), partial...))
	if got := recv(t, b); !bytes.Equal(got, full) {
		t.Fatalf("checksum not completed: got % x, want % x", got[40:42], full[40:42])
	}
	// A super-frame that is not TCP cannot be segmented: dropped, counted.
	a.Device.Inject(append(vnetHdr(1, 1, 54, 1348, 34, 16), frame(mac(2), mac(1), 20000, 3)...))
	quiet(t, b)
	if st := b.Router.Stats(); st.DropOffload != 1 {
		t.Errorf("DropOffload = %d, want 1", st.DropOffload)
	}
	// Plain frames towards an offloading device get an all-zero header.
	plain := frame(mac(1), mac(2), 500, 4)
	b.Device.Inject(plain)
	if got := recv(t, a); !bytes.Equal(got, append(make([]byte, router.VnetHdrLen), plain...)) {
		t.Fatalf("a got header % x", got[:router.VnetHdrLen])
	}
}

func TestHostLocalARPStaysHome(t *testing.T) {
	dns := netip.MustParseAddr("169.254.53.53")
	nw := routertest.NewNetwork(3)
	a := routertest.StartNode(t, nw, 1, addr(1), 1406, func(c *router.Config) { fast(c); c.HostLocal = []netip.Addr{dns} })
	b := routertest.StartNode(t, nw, 2, addr(2), 1406, fast)
	ab, ba, err := routertest.Connect(a, b, 300)
	if err != nil {
		t.Fatal(err)
	}
	established(t, ab, ba)
	g := routertest.Graph{}
	g.Link(1, 2)
	routertest.InstallRoutes(g, a, b)
	arp := func(target [4]byte) []byte {
		f := frame(bcast, mac(1), 42, 0)
		f[12], f[13] = 0x08, 0x06
		copy(f[14:22], []byte{0, 1, 8, 0, 6, 4, 0, 1})
		copy(f[22:28], mac(1))
		copy(f[28:32], []byte{10, 2, 1, 1})
		copy(f[38:42], target[:])
		return f
	}
	a.Device.Inject(arp(dns.As4()))
	other := arp([4]byte{10, 2, 1, 2})
	a.Device.Inject(other)
	if got := recv(t, b); !bytes.Equal(got, other) {
		t.Fatalf("b got % x, want the ARP for 10.2.1.2 only", got[38:42])
	}
	if st := a.Router.Stats(); st.DropHostLocal != 1 {
		t.Errorf("DropHostLocal = %d, want 1", st.DropHostLocal)
	}
}

// tcpSuperFrame is an IPv4 TCP frame from mac(src) to mac(dst) carrying
// payload, as a TCP stack hands it over with segmentation offload: one
// frame, the checksum left partial (here: garbage, which must not matter).
func tcpSuperFrame(t *testing.T, src, dst byte, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: mac(src), DstMAC: mac(dst), EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: 100, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
		SrcIP: []byte{10, 2, 1, src}, DstIP: []byte{10, 2, 1, dst}}
	tcp := &layers.TCP{SrcPort: 4000, DstPort: 5000, Seq: 1000, ACK: true, PSH: true, Window: 100}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	f := bytes.Clone(buf.Bytes())
	f[50], f[51] = 0xde, 0xad
	return f
}

func TestPlainDeviceGetsSuperFramesSegmented(t *testing.T) {
	// 1 has offloads, 2 does not (WEFT_NO_OFFLOAD, or a kernel without
	// virtio-net headers): 2 cuts 1's TCP super-frames itself.
	nodes := startOffloadNet(t, 1500, true, false)
	a, b := nodes[1], nodes[2]
	b.Device.Inject(frame(bcast, mac(2), 60, 1))
	recv(t, a)
	const mss = 1366
	payload := make([]byte, 20000)
	for i := range payload {
		payload[i] = byte(i * 31)
	}
	a.Device.Inject(append(vnetHdr(1, 1 /* TCPV4 */, 54, mss, 34, 16), tcpSuperFrame(t, 1, 2, payload)...))
	var got []byte
	want := (len(payload) + mss - 1) / mss
	for i := range want {
		f := recv(t, b)
		if len(f) > router.EthernetHeaderLen+1406 {
			t.Fatalf("segment %d: %d bytes, more than the device's MTU 1406 allows", i, len(f))
		}
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil {
			t.Fatalf("segment %d does not decode as IPv4/TCP: %v", i, pkt.ErrorLayer())
		}
		if tcp.Seq != uint32(1000+i*mss) || tcp.PSH != (i == want-1) {
			t.Errorf("segment %d: seq %d psh %v", i, tcp.Seq, tcp.PSH)
		}
		// gopacket recomputes both checksums; they must equal the router's.
		check := tcp.Checksum
		tcp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true},
			ip, tcp, gopacket.Payload(tcp.Payload)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), f[router.EthernetHeaderLen:]) {
			t.Fatalf("segment %d: IP or TCP checksum wrong (TCP %#04x)", i, check)
		}
		got = append(got, tcp.Payload...)
	}
	quiet(t, b)
	if !bytes.Equal(got, payload) {
		t.Fatalf("segments carry %d bytes that differ from the super-frame's %d", len(got), len(payload))
	}
	if st := b.Router.Stats(); st.Segmented != uint64(want) || st.DropOffload != 0 {
		t.Errorf("Segmented = %d, DropOffload = %d; want %d and 0", st.Segmented, st.DropOffload, want)
	}
}

func TestBadVnetHeaderFromPeerDropped(t *testing.T) {
	// 1 -- 2, both with offloads. Frames whose virtio-net header does not
	// fit the frame reach 2 and are dropped, counted, before its device
	// write; a good header still goes through.
	nodes := startOffloadNet(t, 1500, true, true)
	a, b := nodes[1], nodes[2]
	b.Device.Inject(append(make([]byte, router.VnetHdrLen), frame(bcast, mac(2), 60, 1)...))
	recv(t, a)
	bad := [][]byte{
		vnetHdr(1, 0, 0, 0, 34, 60000), // checksum field past the frame
		vnetHdr(0x40, 0, 0, 0, 0, 0),   // unknown flag
		vnetHdr(1, 5, 42, 100, 34, 6),  // UDP segmentation: not weft's
		vnetHdr(1, 1, 54, 0, 34, 16),   // TSO with gso_size 0
		vnetHdr(1, 0, 9000, 0, 34, 6),  // hdr_len past the frame
	}
	for i, h := range bad {
		a.Device.Inject(append(bytes.Clone(h), frame(mac(2), mac(1), 500, byte(i))...))
	}
	quiet(t, b)
	if st := b.Router.Stats(); st.DropBadVnet != uint64(len(bad)) {
		t.Errorf("DropBadVnet = %d, want %d", st.DropBadVnet, len(bad))
	}
	good := append(vnetHdr(1, 0, 0, 0, 34, 6), frame(mac(2), mac(1), 500, 9)...)
	a.Device.Inject(good)
	if got := recv(t, b); !bytes.Equal(got, good) {
		t.Fatalf("good frame: got header % x", got[:router.VnetHdrLen])
	}
}
