package router

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// tcpSegmentFlags are the TCP flags of a test frame.
type tcpSegmentFlags struct{ fin, psh, cwr, ece bool }

// tcpFrame builds an Ethernet/IP/TCP frame (IPv6 when v6) with timestamp
// options, IPv4 identification id, sequence number seq and payload, its
// checksums computed by gopacket.
func tcpFrame(t testing.TB, v6 bool, id uint16, seq uint32, fl tcpSegmentFlags, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 5201, Seq: seq, Ack: 777, ACK: true, Window: 512,
		FIN: fl.fin, PSH: fl.psh, CWR: fl.cwr, ECE: fl.ece,
		Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 1, 0, 0, 0, 2, 0}},
		}}
	var ip gopacket.SerializableLayer
	if v6 {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
			SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")}
		if err := tcp.SetNetworkLayerForChecksum(ip6); err != nil {
			t.Fatal(err)
		}
		ip = ip6
	} else {
		ip4 := &layers.IPv4{Version: 4, TTL: 64, Id: id, Flags: layers.IPv4DontFragment,
			Protocol: layers.IPProtocolTCP, SrcIP: ipA, DstIP: ipB}
		if err := tcp.SetNetworkLayerForChecksum(ip4); err != nil {
			t.Fatal(err)
		}
		ip = ip4
	}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, tcp, gopacket.Payload(payload))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// superHdr is a virtio-net header announcing a TCP super-frame with the
// given gso_type and segment size, and a partial checksum.
func superHdr(gsoType uint8, mss uint16) []byte {
	h := make([]byte, VnetHdrLen)
	h[0], h[1] = vnetFlagNeedsCsum, gsoType
	binary.LittleEndian.PutUint16(h[2:], 66)
	binary.LittleEndian.PutUint16(h[4:], mss)
	binary.LittleEndian.PutUint16(h[6:], 34)
	binary.LittleEndian.PutUint16(h[8:], 16)
	return h
}

func testPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*13 + i>>8)
	}
	return p
}

func TestSegmentSuperTCP(t *testing.T) {
	cases := []struct {
		name    string
		v6      bool
		gso     uint8
		payload int
		mss     int
		fl      tcpSegmentFlags
	}{
		{"v4 4 segments FIN PSH CWR", false, vnetGSOTCPv4, 5000, 1448, tcpSegmentFlags{fin: true, psh: true, cwr: true}},
		{"v4 exact multiple", false, vnetGSOTCPv4, 3 * 1354, 1354, tcpSegmentFlags{psh: true}},
		{"v4 ECN bit in gso_type", false, vnetGSOTCPv4 | vnetGSOECN, 3000, 1000, tcpSegmentFlags{cwr: true, ece: true}},
		{"v4 one segment", false, vnetGSOTCPv4, 900, 1448, tcpSegmentFlags{psh: true}},
		{"v4 64 KB", false, vnetGSOTCPv4, 65535 - 20 - 32, 1354, tcpSegmentFlags{psh: true}},
		{"v6 3 segments", true, vnetGSOTCPv6, 4000, 1428, tcpSegmentFlags{fin: true, psh: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const id, seq = 0xfffe, 0xffffff00 // both wrap
			payload := testPayload(c.payload)
			super := tcpFrame(t, c.v6, id, seq, c.fl, payload)
			// The kernel leaves the TCP checksum partial: it must not matter.
			tcpOff := EthernetHeaderLen + 20
			if c.v6 {
				tcpOff = EthernetHeaderLen + 40
			}
			super[tcpOff+16], super[tcpOff+17] = 0xde, 0xad
			s, ok := parseSuperTCP(superHdr(c.gso, uint16(c.mss)), super, EthernetHeaderLen+1500)
			if !ok {
				t.Fatal("parseSuperTCP refused a valid super-frame")
			}
			want := (c.payload + c.mss - 1) / c.mss
			if s.segments != want {
				t.Fatalf("%d segments, want %d", s.segments, want)
			}
			dst := make([]byte, EthernetHeaderLen+1500)
			var got []byte
			for i := range s.segments {
				n := s.segment(dst, super, i)
				from := i * c.mss
				to := min(from+c.mss, c.payload)
				fl := tcpSegmentFlags{
					fin: c.fl.fin && i == s.segments-1,
					psh: c.fl.psh && i == s.segments-1,
					cwr: c.fl.cwr && i == 0,
					ece: c.fl.ece,
				}
				exp := tcpFrame(t, c.v6, id+uint16(i), seq+uint32(from), fl, payload[from:to])
				if !bytes.Equal(dst[:n], exp) {
					t.Fatalf("segment %d:\n got % x\nwant % x", i, dst[:n], exp)
				}
				got = append(got, dst[s.hdrs:n]...)
			}
			if !bytes.Equal(got, payload) {
				t.Fatal("the segments' payloads do not make up the super-frame's")
			}
		})
	}
}

func TestParseSuperTCPRefuses(t *testing.T) {
	v4 := tcpFrame(t, false, 1, 1, tcpSegmentFlags{}, testPayload(3000))
	v6 := tcpFrame(t, true, 1, 1, tcpSegmentFlags{}, testPayload(3000))
	udp := udpFrame(t, 3000, true, nil)
	frag := bytes.Clone(v4)
	frag[EthernetHeaderLen+6] |= 0x20 // MF
	badOff := bytes.Clone(v4)
	badOff[EthernetHeaderLen+20+12] = 0x10 // TCP header of 4 bytes
	cases := []struct {
		name  string
		hdr   []byte
		frame []byte
		max   int
	}{
		{"UDP announced as TCP", superHdr(vnetGSOTCPv4, 1400), udp, 1514},
		{"v6 frame announced as v4", superHdr(vnetGSOTCPv4, 1400), v6, 1514},
		{"v4 frame announced as v6", superHdr(vnetGSOTCPv6, 1400), v4, 1514},
		{"UDP segmentation", superHdr(3, 1400), v4, 1514},
		{"segment size 0", superHdr(vnetGSOTCPv4, 0), v4, 1514},
		{"segments larger than the device takes", superHdr(vnetGSOTCPv4, 1500), v4, 1514},
		{"IPv4 fragment", superHdr(vnetGSOTCPv4, 1400), frag, 1514},
		{"TCP header too short", superHdr(vnetGSOTCPv4, 1400), badOff, 1514},
		{"truncated", superHdr(vnetGSOTCPv4, 1400), v4[:40], 1514},
		{"short header", []byte{1, 1}, v4, 1514},
		{"IPv4 packet longer than the frame", superHdr(vnetGSOTCPv4, 1400), v4[:len(v4)-1], 1514},
		{"IPv6 packet longer than the frame", superHdr(vnetGSOTCPv6, 1400), v6[:len(v6)-1], 1514},
	}
	for _, c := range cases {
		if _, ok := parseSuperTCP(c.hdr, c.frame, c.max); ok {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

func TestSegmentIgnoresBytesAfterThePacket(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		payload := testPayload(3000)
		super := tcpFrame(t, v6, 1, 1, tcpSegmentFlags{psh: true}, payload)
		padded := append(bytes.Clone(super), 0xee, 0xee, 0xee)
		gso := uint8(vnetGSOTCPv4)
		if v6 {
			gso = vnetGSOTCPv6
		}
		s, ok := parseSuperTCP(superHdr(gso, 1000), padded, 1514)
		if !ok {
			t.Fatalf("v6 %v: refused a padded super-frame", v6)
		}
		dst := make([]byte, 1514)
		var got []byte
		for i := range s.segments {
			n := s.segment(dst, padded, i)
			got = append(got, dst[s.hdrs:n]...)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("v6 %v: segments carry %d bytes, want the %d of the packet without its padding", v6, len(got), len(payload))
		}
	}
}

func TestSegmentNoAllocs(t *testing.T) {
	super := tcpFrame(t, false, 1, 1, tcpSegmentFlags{psh: true}, testPayload(60000))
	hdr := superHdr(vnetGSOTCPv4, 1354)
	dst := make([]byte, EthernetHeaderLen+1500)
	allocs := testing.AllocsPerRun(100, func() {
		s, ok := parseSuperTCP(hdr, super, len(dst))
		if !ok {
			t.Fatal("refused")
		}
		for i := range s.segments {
			s.segment(dst, super, i)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per super-frame, want 0", allocs)
	}
}

// FuzzSegmentSuperTCP cuts arbitrary frames announced as TCP super-frames
// by arbitrary headers: it must never panic, and whatever it accepts must
// come out as segments within the size limit whose payloads make up the
// frame's.
func FuzzSegmentSuperTCP(f *testing.F) {
	f.Add(superHdr(vnetGSOTCPv4, 1448), tcpFrame(f, false, 1, 1, tcpSegmentFlags{fin: true}, testPayload(5000)))
	f.Add(superHdr(vnetGSOTCPv6, 1428), tcpFrame(f, true, 1, 1, tcpSegmentFlags{psh: true}, testPayload(4000)))
	f.Add(superHdr(vnetGSOTCPv4|vnetGSOECN, 100), tcpFrame(f, false, 9, 9, tcpSegmentFlags{cwr: true}, testPayload(1000)))
	f.Add(superHdr(vnetGSOTCPv4, 1), tcpFrame(f, false, 1, 1, tcpSegmentFlags{}, nil))
	const limit = EthernetHeaderLen + 1500
	dst := make([]byte, limit)
	f.Fuzz(func(t *testing.T, hdr, frame []byte) {
		s, ok := parseSuperTCP(hdr, frame, limit)
		if !ok {
			return
		}
		total := 0
		for i := range s.segments {
			n := s.segment(dst, frame, i)
			if n > limit || n < s.hdrs {
				t.Fatalf("segment %d: %d bytes (headers %d, limit %d)", i, n, s.hdrs, limit)
			}
			total += n - s.hdrs
		}
		if total != s.end-s.hdrs {
			t.Fatalf("segments carry %d payload bytes of %d", total, s.end-s.hdrs)
		}
	})
}

// BenchmarkSegmentSuperTCP cuts a 64 KB TCP super-frame into 1354-byte
// segments with complete checksums, as a router without TAP offloads does
// for each one its peers send.
func BenchmarkSegmentSuperTCP(b *testing.B) {
	super := tcpFrame(b, false, 1, 1, tcpSegmentFlags{psh: true}, testPayload(65535-20-32))
	hdr := superHdr(vnetGSOTCPv4, 1354)
	dst := make([]byte, EthernetHeaderLen+1500)
	b.SetBytes(int64(len(super)))
	b.ReportAllocs()
	for b.Loop() {
		s, ok := parseSuperTCP(hdr, super, len(dst))
		if !ok {
			b.Fatal("refused")
		}
		for i := range s.segments {
			s.segment(dst, super, i)
		}
	}
}
