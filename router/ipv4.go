package router

import (
	"encoding/binary"
	"fmt"
)

// Helpers for frames that do not fit the path MTU. They are pure: they
// read one frame and write into a caller buffer, allocating nothing.

const (
	etherTypeIPv4 = 0x0800
	ipv4FlagDF    = 0x4000
	ipv4FlagMF    = 0x2000
	ipv4OffMask   = 0x1fff
	icmpHeaderLen = 8
	icmpQuoteData = 8 // bytes of the offending datagram's payload quoted
)

// ipv4Info describes the IPv4 packet in an Ethernet frame.
type ipv4Info struct {
	hdrLen   int // IP header length in bytes
	totalLen int // IP total length
	df, mf   bool
	fragOff  int // fragment offset in bytes
}

// parseIPv4 checks that frame is an untagged Ethernet frame carrying a
// well-formed IPv4 header.
func parseIPv4(frame []byte) (ipv4Info, error) {
	if len(frame) < EthernetHeaderLen+20 || binary.BigEndian.Uint16(frame[12:14]) != etherTypeIPv4 {
		return ipv4Info{}, ErrNotIPv4
	}
	ip := frame[EthernetHeaderLen:]
	if ip[0]>>4 != 4 {
		return ipv4Info{}, ErrNotIPv4
	}
	h := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if h < 20 || total < h || total > len(ip) {
		return ipv4Info{}, ErrNotIPv4
	}
	ff := binary.BigEndian.Uint16(ip[6:8])
	return ipv4Info{
		hdrLen:   h,
		totalLen: total,
		df:       ff&ipv4FlagDF != 0,
		mf:       ff&ipv4FlagMF != 0,
		fragOff:  int(ff&ipv4OffMask) * 8,
	}, nil
}

// checksum returns the Internet checksum of b.
func checksum(b []byte) uint16 { return ^onesSum(b) }

// onesSum is the folded 16-bit ones' complement sum of b read as
// big-endian words (a last odd byte padded with zero). It adds 32-bit
// words into a 64-bit accumulator, which folds to the same sum: a 32-bit
// word hi<<16|lo is hi+lo modulo 0xffff.
func onesSum(b []byte) uint16 {
	var sum uint64
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		sum += v>>32 + v&0xffffffff
		b = b[8:]
	}
	for len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// FragNeeded writes into dst an Ethernet frame carrying an ICMPv4
// "destination unreachable, fragmentation needed" error (type 3, code 4)
// in answer to the IPv4 frame orig, announcing the next-hop mtu. The
// error goes back to orig's sender: MACs are swapped and its source IP is
// orig's destination, so that the sender's stack accepts it as coming from
// the far end. It quotes orig's IP header and the first 8 bytes of its
// payload. It returns the length written.
func FragNeeded(dst, orig []byte, mtu int) (int, error) {
	info, err := parseIPv4(orig)
	if err != nil {
		return 0, fmt.Errorf("frag needed: %w", err)
	}
	quote := info.hdrLen + min(icmpQuoteData, info.totalLen-info.hdrLen)
	n := EthernetHeaderLen + 20 + icmpHeaderLen + quote
	if len(dst) < n {
		return 0, fmt.Errorf("frag needed: %d bytes for %d: %w", len(dst), n, ErrNoRoom)
	}
	oip := orig[EthernetHeaderLen:]
	// Ethernet: back to the sender.
	copy(dst[0:6], orig[6:12])
	copy(dst[6:12], orig[0:6])
	binary.BigEndian.PutUint16(dst[12:14], etherTypeIPv4)
	ip := dst[EthernetHeaderLen:n]
	ip[0] = 0x45
	ip[1] = 0
	binary.BigEndian.PutUint16(ip[2:4], uint16(len(ip)))
	binary.BigEndian.PutUint16(ip[4:6], 0)
	binary.BigEndian.PutUint16(ip[6:8], 0)
	ip[8] = 64 // TTL
	ip[9] = 1  // ICMP
	ip[10], ip[11] = 0, 0
	copy(ip[12:16], oip[16:20]) // source: the original destination
	copy(ip[16:20], oip[12:16]) // destination: the original source
	binary.BigEndian.PutUint16(ip[10:12], checksum(ip[:20]))
	icmp := ip[20:]
	icmp[0] = 3 // destination unreachable
	icmp[1] = 4 // fragmentation needed and DF set
	icmp[2], icmp[3] = 0, 0
	icmp[4], icmp[5] = 0, 0
	binary.BigEndian.PutUint16(icmp[6:8], uint16(mtu))
	copy(icmp[icmpHeaderLen:], oip[:quote])
	binary.BigEndian.PutUint16(icmp[2:4], checksum(icmp))
	return n, nil
}

// FragmentIPv4 writes into dst one fragment of the IPv4 frame orig: the
// fragment whose payload starts at byte off of orig's payload, as large as
// fits an IP packet of mtu bytes (payload a multiple of 8 unless last). It
// returns the fragment's frame length and the payload offset of the next
// fragment, which is 0 after the last one. Call it first with off 0 and
// then with each returned next until next is 0. orig may itself be a
// fragment; the pieces then keep its offset and more-fragments flag.
// Options are copied into later fragments only when their copy bit is set.
func FragmentIPv4(dst, orig []byte, mtu, off int) (n, next int, err error) {
	info, err := parseIPv4(orig)
	if err != nil {
		return 0, 0, fmt.Errorf("fragment: %w", err)
	}
	oip := orig[EthernetHeaderLen:]
	payload := oip[info.hdrLen:info.totalLen]
	if off < 0 || off >= len(payload) || off%8 != 0 {
		return 0, 0, fmt.Errorf("fragment: offset %d of %d: %w", off, len(payload), ErrNoRoom)
	}
	if len(dst) < EthernetHeaderLen+info.hdrLen+8 {
		return 0, 0, fmt.Errorf("fragment: %d-byte buffer: %w", len(dst), ErrNoRoom)
	}
	copy(dst[:EthernetHeaderLen], orig[:EthernetHeaderLen])
	ip := dst[EthernetHeaderLen:]
	hlen := info.hdrLen
	copy(ip[:20], oip[:20])
	if off == 0 {
		copy(ip[20:hlen], oip[20:hlen])
	} else {
		hlen = copyOptions(ip[20:hlen], oip[20:info.hdrLen]) + 20
	}
	room := min(mtu, len(ip)) - hlen
	maxData := room &^ 7
	if maxData < 8 {
		return 0, 0, fmt.Errorf("fragment: mtu %d: %w", mtu, ErrNoRoom)
	}
	size, last := len(payload)-off, true
	if size > maxData {
		size, last = maxData, false
	}
	copy(ip[hlen:], payload[off:off+size])
	ip[0] = 0x40 | byte(hlen/4)
	binary.BigEndian.PutUint16(ip[2:4], uint16(hlen+size))
	ff := uint16((info.fragOff + off) / 8)
	if !last || info.mf {
		ff |= ipv4FlagMF
	}
	binary.BigEndian.PutUint16(ip[6:8], ff)
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:12], checksum(ip[:hlen]))
	if !last {
		next = off + size
	}
	return EthernetHeaderLen + hlen + size, next, nil
}

// copyOptions copies the IPv4 options of src whose copy bit is set into
// dst, pads them to a multiple of 4 bytes with end-of-list and returns the
// length written. dst must be at least len(src) long.
func copyOptions(dst, src []byte) int {
	n := 0
	for i := 0; i < len(src); {
		t := src[i]
		if t == 0 { // end of list
			break
		}
		if t == 1 { // no-op
			i++
			continue
		}
		if i+1 >= len(src) {
			break
		}
		l := int(src[i+1])
		if l < 2 || i+l > len(src) {
			break
		}
		if t&0x80 != 0 {
			n += copy(dst[n:], src[i:i+l])
		}
		i += l
	}
	for n%4 != 0 {
		dst[n] = 0
		n++
	}
	return n
}
