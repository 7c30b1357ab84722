package router

import "encoding/binary"

// Frames written to a multi-queue device go to a queue chosen by their
// flow. The kernel steers the frames of a flow it last saw written on a
// queue out of that same queue, so writing every frame on one queue would
// pull every flow onto one reader; a hash that is the same in both
// directions keeps each flow, both ways, on one queue while different
// flows spread over all of them.

// flowQueue returns the queue of n for a frame: by a direction-free hash
// of its IPv4 or IPv6 addresses and, for unfragmented TCP, UDP and SCTP,
// ports. Frames of other kinds go to queue 0.
func flowQueue(fr []byte, n int) int {
	if n <= 1 || len(fr) < EthernetHeaderLen {
		return 0
	}
	var addrs, ports uint32
	var proto byte
	var l4 []byte
	ip := fr[EthernetHeaderLen:]
	switch binary.BigEndian.Uint16(fr[12:14]) {
	case etherTypeIPv4:
		if len(ip) < 20 || ip[0]>>4 != 4 {
			return 0
		}
		proto = ip[9]
		addrs = binary.BigEndian.Uint32(ip[12:16]) ^ binary.BigEndian.Uint32(ip[16:20])
		ihl := int(ip[0]&0x0f) * 4
		// A fragment other than the first has no ports; the first
		// fragment must not use them either, or the fragments of one
		// packet would go to different queues.
		if binary.BigEndian.Uint16(ip[6:8])&0x3fff == 0 && ihl >= 20 && len(ip) >= ihl+4 {
			l4 = ip[ihl:]
		}
	case etherTypeIPv6:
		if len(ip) < 40 {
			return 0
		}
		proto = ip[6]
		for i := 8; i < 40; i += 4 {
			addrs ^= binary.BigEndian.Uint32(ip[i : i+4])
		}
		if len(ip) >= 44 {
			l4 = ip[40:]
		}
	default:
		return 0
	}
	switch proto {
	case 6, 17, 132: // TCP, UDP, SCTP: source and destination port first
		if l4 != nil {
			ports = uint32(binary.BigEndian.Uint16(l4[0:2]) ^ binary.BigEndian.Uint16(l4[2:4]))
		}
	}
	h := addrs ^ ports<<16 ^ ports ^ uint32(proto)
	h ^= h >> 16
	h *= 0x45d9f3b
	h ^= h >> 16
	return int(h % uint32(n))
}
