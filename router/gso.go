package router

import (
	"encoding/binary"
)

// Software segmentation of TCP super-frames, for a device without
// virtio-net headers: a peer whose kernel hands weft 64 KB TCP segments
// sends them as they are, and a router whose device cannot take them (a
// plain TAP: WEFT_NO_OFFLOAD=1, or a kernel without IFF_VNET_HDR) cuts them
// into frames of gso_size bytes of payload each, as the sender's kernel
// would have, with every checksum complete. Like ipv4.go it is pure: it
// reads one frame and writes into caller buffers.

// virtio_net_hdr gso_type values weft's TAP can produce (TUN_F_TSO4,
// TUN_F_TSO6), and the ECN bit that may accompany them.
const (
	vnetGSOTCPv4 = 1
	vnetGSOTCPv6 = 4
	vnetGSOECN   = 0x80
)

const (
	etherTypeIPv6 = 0x86dd
	protoTCP      = 6
	tcpFlagFIN    = 0x01
	tcpFlagPSH    = 0x08
	tcpFlagCWR    = 0x80
)

// superTCP describes a TCP super-frame to be segmented.
type superTCP struct {
	v6       bool
	l4       int // offset of the TCP header in the frame
	hdrs     int // bytes of Ethernet, IP and TCP headers
	mss      int // payload bytes per segment
	segments int
	end      int // length of the frame up to the end of its IP packet (no padding)
}

// ipLen is the length of the IP packet in frame as its header gives it.
func (s *superTCP) ipLen(frame []byte) int {
	ip := frame[EthernetHeaderLen:]
	if s.v6 {
		return 40 + int(binary.BigEndian.Uint16(ip[4:6]))
	}
	return int(binary.BigEndian.Uint16(ip[2:4]))
}

// parseSuperTCP checks that frame, announced by virtio-net header h as a
// TCP super-frame, can be cut into segments of at most maxFrame bytes. It
// trusts nothing in h but the type and segment size: the TCP header is
// found from the IP header, as the receiving kernel would.
func parseSuperTCP(h, frame []byte, maxFrame int) (superTCP, bool) {
	var s superTCP
	if len(h) < VnetHdrLen || len(frame) < EthernetHeaderLen {
		return s, false
	}
	s.mss = int(binary.LittleEndian.Uint16(h[4:6]))
	et := binary.BigEndian.Uint16(frame[12:14])
	ip := frame[EthernetHeaderLen:]
	switch h[1] &^ vnetGSOECN {
	case vnetGSOTCPv4:
		if et != etherTypeIPv4 || len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != protoTCP {
			return s, false
		}
		ihl := int(ip[0]&0x0f) * 4
		if ihl < 20 || binary.BigEndian.Uint16(ip[6:8])&(ipv4FlagMF|ipv4OffMask) != 0 {
			return s, false // a fragment cannot be a TCP super-frame
		}
		s.l4 = EthernetHeaderLen + ihl
	case vnetGSOTCPv6:
		// Extension headers are not followed: Linux offers IPv6 TSO
		// only for packets without them.
		if et != etherTypeIPv6 || len(ip) < 40 || ip[0]>>4 != 6 || ip[6] != protoTCP {
			return s, false
		}
		s.v6 = true
		s.l4 = EthernetHeaderLen + 40
	default:
		return s, false
	}
	if len(frame) < s.l4+20 {
		return s, false
	}
	// Bytes after the IP packet (Ethernet padding) are not payload; a
	// packet longer than the frame was cut short.
	s.end = EthernetHeaderLen + s.ipLen(frame)
	if s.end > len(frame) {
		return s, false
	}
	frame = frame[:s.end]
	thl := int(frame[s.l4+12]>>4) * 4
	s.hdrs = s.l4 + thl
	if thl < 20 || len(frame) < s.hdrs || s.mss <= 0 || s.hdrs+s.mss > maxFrame {
		return s, false
	}
	payload := len(frame) - s.hdrs
	s.segments = max(1, (payload+s.mss-1)/s.mss)
	return s, true
}

// segment writes segment i of super-frame frame into dst (which must
// hold s.hdrs+s.mss bytes) and returns its length: the headers with the
// IP length, IPv4 identification and checksum, TCP sequence number and
// flags adjusted, the payload bytes from i*mss on, and a complete TCP
// checksum.
func (s *superTCP) segment(dst, frame []byte, i int) int {
	frame = frame[:s.end]
	off := s.hdrs + i*s.mss
	n := min(s.mss, len(frame)-off)
	copy(dst, frame[:s.hdrs])
	copy(dst[s.hdrs:], frame[off:off+n])
	seg := dst[:s.hdrs+n]
	ip := seg[EthernetHeaderLen:]
	tcpLen := s.hdrs - s.l4 + n
	if s.v6 {
		binary.BigEndian.PutUint16(ip[4:6], uint16(s.l4-EthernetHeaderLen-40+tcpLen))
	} else {
		binary.BigEndian.PutUint16(ip[2:4], uint16(s.l4-EthernetHeaderLen+tcpLen))
		id := binary.BigEndian.Uint16(frame[EthernetHeaderLen+4 : EthernetHeaderLen+6])
		binary.BigEndian.PutUint16(ip[4:6], id+uint16(i))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:12], checksum(ip[:s.l4-EthernetHeaderLen]))
	}
	tcp := seg[s.l4:]
	seq := binary.BigEndian.Uint32(frame[s.l4+4 : s.l4+8])
	binary.BigEndian.PutUint32(tcp[4:8], seq+uint32(i*s.mss))
	if i > 0 {
		tcp[13] &^= tcpFlagCWR
	}
	if i < s.segments-1 {
		tcp[13] &^= tcpFlagFIN | tcpFlagPSH
	}
	binary.BigEndian.PutUint16(tcp[16:18], pseudoHeaderSum(ip, s.v6, tcpLen))
	completeChecksum(seg, s.l4, 16)
	return len(seg)
}

// pseudoHeaderSum is the folded ones' complement sum of the TCP pseudo
// header for a segment of tcpLen bytes in IP packet ip, which a partial
// checksum field holds before completeChecksum finishes it.
func pseudoHeaderSum(ip []byte, v6 bool, tcpLen int) uint16 {
	addrs := ip[12:20]
	if v6 {
		addrs = ip[8:40]
	}
	sum := uint32(onesSum(addrs)) + protoTCP + uint32(tcpLen)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}
