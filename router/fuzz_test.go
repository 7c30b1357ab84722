package router

import (
	"testing"

	"github.com/google/gopacket/layers"
)

// FuzzDecode feeds arbitrary datagrams to the decoder: it must never
// panic, and records it accepts must lie inside the datagram.
func FuzzDecode(f *testing.F) {
	f.Add(encodeFrames(1, Record{Type: RecordFrame, Src: 1, Dst: 2, Frame: make([]byte, 60)}))
	hb := make([]byte, 64)
	f.Add(hb[:putHeartbeat(hb, 3, 1, 42)])
	f.Add(hb[:putPathChallenge(hb, 3, 1, 42, 7)])
	f.Add([]byte{1, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, body, err := ParseHeader(b)
		if err != nil {
			return
		}
		switch h.Type {
		case TypeHeartbeat:
			_, _ = parseHeartbeat(body)
		case TypeProbe:
			_, _, _ = parseProbe(body)
		case TypeProbeAck:
			_, _, _, _ = parseProbeAck(body)
		case TypePathChallenge:
			_, _, _ = parsePathChallenge(body)
		}
		for off := 0; off < len(body); {
			r, n, err := ParseRecord(body[off:])
			if err != nil {
				return
			}
			if n < RecordHeaderLen || off+n > len(body) || len(r.Frame) != n-RecordHeaderLen {
				t.Fatalf("record of %d bytes at %d in %d", n, off, len(body))
			}
			off += n
		}
	})
}

// FuzzIPv4 feeds arbitrary frames to the ICMP and fragmentation helpers:
// they must never panic, and fragments they produce must fit the MTU and
// carry the original payload.
func FuzzIPv4(f *testing.F) {
	f.Add(udpFrame(f, 100, true, nil), uint16(600))
	f.Add(udpFrame(f, 1500, false, nil), uint16(576))
	f.Add(udpFrame(f, 40, false, []layers.IPv4Option{{OptionType: 0x83, OptionLength: 7, OptionData: []byte{4, 1, 2, 3, 4}}}), uint16(68))
	dst := make([]byte, MaxDatagram)
	f.Fuzz(func(t *testing.T, frame []byte, mtu uint16) {
		_, _ = FragNeeded(dst, frame, int(mtu))
		info, err := parseIPv4(frame)
		if err != nil {
			return
		}
		var got int
		for off, i := 0, 0; ; i++ {
			n, next, err := FragmentIPv4(dst, frame, int(mtu), off)
			if err != nil {
				return
			}
			fi, err := parseIPv4(dst[:n])
			if err != nil || fi.totalLen > max(int(mtu), fi.hdrLen+8) || fi.totalLen != n-EthernetHeaderLen {
				t.Fatalf("fragment %d: %+v %v (mtu %d, %d bytes)", i, fi, err, mtu, n)
			}
			got += fi.totalLen - fi.hdrLen
			if next == 0 {
				break
			}
			if next <= off {
				t.Fatalf("offset went from %d to %d", off, next)
			}
			off = next
		}
		if got != info.totalLen-info.hdrLen {
			t.Fatalf("fragments carry %d bytes of %d", got, info.totalLen-info.hdrLen)
		}
	})
}

// FuzzReceive runs arbitrary datagrams through the whole receive path of
// a router with an established connection: decoding, learning, local
// delivery, relaying and control handling must never panic.
func FuzzReceive(f *testing.F) {
	arp := ethFrame(0xff, 0x0a, 60)
	copy(arp, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add(encodeFrames(peerA, Record{Type: RecordFrame, Src: peerA, Dst: BroadcastPeer, Frame: arp}))
	f.Add(encodeFrames(peerA, Record{Type: RecordFrame, Src: peerA, Dst: peerB, Frame: ethFrame(0x0b, 0x0a, 1400)},
		Record{Type: RecordFrame, Src: peerA, Dst: 0x0c, Frame: ethFrame(0x0c, 0x0a, 100)}))
	hb := make([]byte, 64)
	f.Add(hb[:putHeartbeat(hb, peerA, 1, 1)])
	f.Add(hb[:putPathChallenge(hb, peerA, 1, 1, 7)])
	pr := make([]byte, 2000)
	f.Add(pr[:putProbe(pr, 1500, peerA, 2, 1, 7)])
	f.Add(pr[:putProbeAck(pr, peerA, 3, 1, 7, 1500)])
	// A TCP super-frame for B's device, which has no offloads: B cuts it.
	super := append(superHdr(vnetGSOTCPv4, 500), tcpFrame(f, false, 1, 1, tcpSegmentFlags{psh: true}, testPayload(1200))...)
	copy(super[VnetHdrLen:], macB)
	f.Add(encodeFrames(peerA, Record{Type: RecordVnet, Src: peerA, Dst: peerB, Frame: super}))
	// Pings and pongs: for B, relayed by B, and a pong of no ping.
	f.Add(encodeFrames(peerA, Record{Type: RecordPing, Src: peerA, Dst: peerB, Frame: make([]byte, pingBodyLen)},
		Record{Type: RecordPing, Src: peerA, Dst: 0x0c, Frame: make([]byte, pingBodyLen)},
		Record{Type: RecordPong, Src: peerA, Dst: peerB, Frame: make([]byte, pongBodyLen)}))
	p := newPathPair(f)
	p.trB.to = nil
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &p.udpB.dgrams[0]
		d.N = copy(d.Buf, b)
		d.Addr = fromA // the connection is bound to A's address
		p.udpB.handle(1)
	})
}
