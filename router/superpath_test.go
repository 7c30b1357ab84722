package router

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/weftnet/weft/secure"
)

// The offloaded path: TCP super-frames of up to 64 KB read with a
// virtio-net header, cut into trains of datagrams, received as coalesced
// trains (UDP_GRO), reassembled and written whole.

// superFrameLen is the largest frame a TAP with TSO hands the router.
const superFrameLen = 65535 - 14

// newSuperPair is a pathPair with virtio-net devices and transports that
// send and receive trains; with a suite the connection is sealed.
func newSuperPair(t testing.TB, suite *secure.Suite) *pathPair {
	t.Helper()
	p := newPathPairWith(t, func(p *pathPair) {
		p.devA.vnet, p.devB.vnet = true, true
		p.trA.maxSegments, p.trB.maxSegments = 64, 64
	})
	if suite != nil {
		ka, kb := linkedRings(t, *suite, secure.RekeyPolicy{}, time.Now())
		(*p.a.conns.Load())[peerB].keys = ka
		(*p.b.conns.Load())[peerA].keys = kb
	}
	p.a.macs.learn(macKey([]byte{2, 0, 0, 0, 0, 0x0b}), peerB, now())
	p.b.macs.learn(macKey([]byte{2, 0, 0, 0, 0, 0x0b}), peerB, now())
	return p
}

// tsoHeader is the virtio-net header of a TCP/IPv4 super-frame: partial
// checksum at the TCP header, segments of 1448 bytes.
func tsoHeader() []byte {
	h := make([]byte, VnetHdrLen)
	h[0], h[1] = vnetFlagNeedsCsum, 1 // VIRTIO_NET_HDR_GSO_TCPV4
	binary.LittleEndian.PutUint16(h[2:], 66)
	binary.LittleEndian.PutUint16(h[4:], 1448)
	binary.LittleEndian.PutUint16(h[6:], 34)
	binary.LittleEndian.PutUint16(h[8:], 16)
	return h
}

// fillSuper puts n copies of a super-frame with its header into the TAP
// reader's buffers and returns header and frame as the device gets them.
func (p *pathPair) fillSuper(n, size int) []byte {
	blob := append(tsoHeader(), ethFrame(0x0b, 0x0a, size)...)
	for i := range n {
		copy(p.tapA.bufs[i][tapHeadroom-VnetHdrLen:], blob)
		p.tapA.sizes[i] = size
	}
	return blob
}

// superVariant is a connection without keys (nil suite) or sealed with
// a suite.
type superVariant struct {
	name  string
	suite *secure.Suite
}

func superVariants() []superVariant {
	chacha, aes := secure.SuiteChaCha20Poly1305, secure.SuiteAES256GCM
	return []superVariant{{"plain", nil}, {"chacha20poly1305", &chacha}, {"aes256gcm", &aes}}
}

func TestSuperFramePathNoAllocs(t *testing.T) {
	for _, tc := range superVariants() {
		t.Run(tc.name, func(t *testing.T) {
			p := newSuperPair(t, tc.suite)
			want := p.fillSuper(8, superFrameLen)
			p.roundTrip(8)
			if p.devB.frames != 8 || !bytes.Equal(p.devB.last, want) {
				t.Fatalf("b delivered %d frames, the last %d bytes; want 8 of %d bytes, identical",
					p.devB.frames, len(p.devB.last), len(want))
			}
			if p.trA.sent != 16 {
				t.Fatalf("8 super-frames took %d trains, want 16 (two each)", p.trA.sent)
			}
			if st := p.b.Stats(); st.DropReassembly+st.DropBadDatagram+st.DropAuthFailed+st.DropReplay != 0 {
				t.Fatalf("b dropped: %+v", st)
			}
			if allocs := testing.AllocsPerRun(50, func() { p.roundTrip(8) }); allocs != 0 {
				t.Fatalf("a round trip of 8 super-frames allocates %v times", allocs)
			}
		})
	}
}

// BenchmarkSuperFrame measures the offloaded path per 64 KB super-frame:
// encapsulate (switch, cut into a train, seal when keyed) at a, and the
// round trip that also opens, reassembles and delivers at b.
func BenchmarkSuperFrame(b *testing.B) {
	for _, tc := range superVariants() {
		b.Run(fmt.Sprintf("%s/encapsulate", tc.name), func(b *testing.B) {
			p := newSuperPair(b, tc.suite)
			p.trA.to = nil
			p.fillSuper(8, superFrameLen)
			p.tapA.handle(8) // warm up: buffers grow on first use
			b.ReportAllocs()
			b.SetBytes(8 * superFrameLen)
			for b.Loop() {
				p.tapA.handle(8)
			}
		})
		b.Run(fmt.Sprintf("%s/roundtrip", tc.name), func(b *testing.B) {
			p := newSuperPair(b, tc.suite)
			p.fillSuper(8, superFrameLen)
			p.roundTrip(8)
			b.ReportAllocs()
			b.SetBytes(8 * superFrameLen)
			for b.Loop() {
				p.roundTrip(8)
			}
		})
	}
}

// trainPacketSize is the largest IP packet whose super-frame (virtio-net
// header and Ethernet frame) fits one train of datagrams on a connection
// of the given MTU.
func trainPacketSize(mtu int) int {
	limit := mtu + FrameOverhead
	segs := min(trainSegments, MaxDatagram/limit)
	room := limit - HeaderLen - TagLen - RecordHeaderLen - segmentHeaderLen
	return segs*room - VnetHdrLen - EthernetHeaderLen
}

// A super-frame that fills one train leaves in one; one byte more takes
// a second, short train, and both arrive as one frame. (Containers keep
// the kernel's 64 KB GSO size, so most super-frames take two.)
func TestSuperFrameTrains(t *testing.T) {
	p := newSuperPair(t, nil)
	mtu := int((*p.a.conns.Load())[peerB].mtu.Load())
	max := trainPacketSize(mtu)
	if max < 60000 || max > 65535 {
		t.Fatalf("trainPacketSize(%d) = %d, want a little below 64 KB", mtu, max)
	}
	for _, tc := range []struct {
		packet, trains int
	}{{max, 1}, {max + 1, 2}} {
		want := p.fillSuper(1, EthernetHeaderLen+tc.packet)
		p.trA.sent = 0
		p.roundTrip(1)
		if p.trA.sent != tc.trains || !bytes.Equal(p.devB.last, want) {
			t.Fatalf("IP packet of %d bytes: %d trains, delivered %d bytes; want %d trains, %d bytes",
				tc.packet, p.trA.sent, len(p.devB.last), tc.trains, len(want))
		}
		// Every datagram of the trains has its own counter, one up
		// from the one before.
		var counters []uint64
		for _, d := range p.udpB.dgrams[:p.trA.n] {
			for pos := 0; pos < d.N; pos += d.Segment {
				h, _, err := ParseHeader(d.Buf[pos:min(pos+d.Segment, d.N)])
				if err != nil {
					t.Fatal(err)
				}
				counters = append(counters, h.Counter)
			}
		}
		for i := 1; i < len(counters); i++ {
			if counters[i] != counters[i-1]+1 {
				t.Fatalf("IP packet of %d bytes: datagram counters %v, want each one up from the one before", tc.packet, counters)
			}
		}
	}
}
