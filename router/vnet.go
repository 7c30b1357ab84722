package router

import (
	"encoding/binary"

	"github.com/weftnet/weft/mesh"
)

// Frames with a virtio-net header. An offloading device (Offloader) reads
// frames with a header that may announce a TCP segmentation offload
// super-frame (up to 64 KB) or a partial checksum the kernel left to be
// completed. Such frames travel between peers with their header, in one
// RecordVnet record when they fit a datagram, else cut into RecordSegment
// records of one datagram each that the next hop puts back together. The
// receiving peer writes the frame and its header into its own device, and
// its kernel segments or checksums it only if and where it must: a 64 KB
// TCP segment crosses the overlay with a handful of system calls instead
// of one per 1.4 KB frame.

// virtio_net_hdr fields (little-endian, as Linux uses on every host weft
// runs on).
const (
	vnetFlagNeedsCsum = 1 // flags: checksum from csum_start to be completed
	vnetFlagDataValid = 2 // flags: checksum already verified
	vnetGSONone       = 0 // gso_type: not a super-frame
)

// maxVnetFrame is the longest frame a virtio-net header may come with.
const maxVnetFrame = 65535

// segmentHeaderLen is the header in front of a RecordSegment's data:
// frame id (4), offset of the data in the header+frame blob (4), blob
// length (4).
const segmentHeaderLen = 12

// maxBlob is the largest header+frame blob a segment may announce.
const maxBlob = VnetHdrLen + 65535

// trainSegments is the most datagrams the router puts in one train (the
// kernel's UDP_SEGMENT limit).
const trainSegments = 64

// vnetPlain reports whether a virtio-net header announces nothing: no
// super-frame and no checksum left to do.
func vnetPlain(h []byte) bool { return h[0] == 0 && h[1] == vnetGSONone }

// vnetValid reports whether virtio-net header h, received from a peer,
// fits frame and announces only what weft's TAP can produce: flags
// NEEDS_CSUM and DATA_VALID only; gso_type none, TCPv4 or TCPv6 (with the
// ECN bit only alongside a TCP type); a checksum field (csum_start +
// csum_offset + 2 bytes, csum_start past the Ethernet header) and hdr_len
// within the frame; for a super-frame, a gso_size of 1 to the frame's
// length; and a frame of EthernetHeaderLen to maxVnetFrame bytes. The
// receiving kernel trusts these fields; a frame that fails is dropped
// before it reaches the device (dropBadVnet). It allocates nothing.
func vnetValid(h, frame []byte) bool {
	if len(h) < VnetHdrLen || len(frame) < EthernetHeaderLen || len(frame) > maxVnetFrame {
		return false
	}
	flags, gso := h[0], h[1]
	hdrLen := int(binary.LittleEndian.Uint16(h[2:4]))
	gsoSize := int(binary.LittleEndian.Uint16(h[4:6]))
	if flags&^(vnetFlagNeedsCsum|vnetFlagDataValid) != 0 || hdrLen > len(frame) {
		return false
	}
	if flags&vnetFlagNeedsCsum != 0 {
		start := int(binary.LittleEndian.Uint16(h[6:8]))
		off := int(binary.LittleEndian.Uint16(h[8:10]))
		if start < EthernetHeaderLen || start+off+2 > len(frame) {
			return false
		}
	}
	switch gso &^ vnetGSOECN {
	case vnetGSONone:
		return gso == vnetGSONone
	case vnetGSOTCPv4, vnetGSOTCPv6:
		return gsoSize > 0 && gsoSize <= len(frame)
	}
	return false
}

// completeChecksum does in software what a device with checksum offload
// would: it folds the ones' complement sum of frame[start:] into the 16-bit
// field at start+off, which the sender's kernel seeded with the pseudo
// header sum. It reports false when the offsets do not fit the frame.
func completeChecksum(frame []byte, start, off int) bool {
	if start < EthernetHeaderLen || start+off+2 > len(frame) {
		return false
	}
	binary.BigEndian.PutUint16(frame[start+off:], ^onesSum(frame[start:]))
	return true
}

// plainFromVnet turns a frame that is not a super-frame, received with
// header h, into a plain frame for a device without virtio-net headers:
// it completes the partial checksum h announces. It reports false when
// the checksum offsets do not fit the frame.
func plainFromVnet(h, frame []byte) bool {
	if h[0]&vnetFlagNeedsCsum != 0 {
		return completeChecksum(frame, int(binary.LittleEndian.Uint16(h[6:8])), int(binary.LittleEndian.Uint16(h[8:10])))
	}
	return true
}

// putSegment writes a RecordSegment record carrying blob[off:end] of the
// blob made of the virtio-net header hdr followed by frame (total bytes)
// into b, and returns its length.
func putSegment(b []byte, stream uint8, src, dst mesh.PeerName, id uint32, hdr, frame []byte, off, end int) int {
	n := segmentHeaderLen + end - off
	b[0] = RecordSegment
	b[1] = stream
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
	src.Put(b[4:10])
	dst.Put(b[10:16])
	p := b[RecordHeaderLen:]
	binary.BigEndian.PutUint32(p[0:4], id)
	binary.BigEndian.PutUint32(p[4:8], uint32(off))
	binary.BigEndian.PutUint32(p[8:12], uint32(VnetHdrLen+len(frame)))
	copyBlob(p[segmentHeaderLen:segmentHeaderLen+end-off], hdr, frame, off)
	return RecordHeaderLen + n
}

// copyBlob fills dst with the bytes from offset off of the blob made of
// the virtio-net header hdr followed by frame.
func copyBlob(dst, hdr, frame []byte, off int) {
	if off < VnetHdrLen {
		k := copy(dst, hdr[off:VnetHdrLen])
		copy(dst[k:], frame)
		return
	}
	copy(dst, frame[off-VnetHdrLen:])
}

// putVnetRecord writes a RecordVnet record (header then frame) into b and
// returns its length.
func putVnetRecord(b []byte, src, dst mesh.PeerName, hdr, frame []byte) int {
	n := VnetHdrLen + len(frame)
	b[0] = RecordVnet
	b[1] = 0
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
	src.Put(b[4:10])
	dst.Put(b[10:16])
	copy(b[RecordHeaderLen:], hdr[:VnetHdrLen])
	copy(b[RecordHeaderLen+VnetHdrLen:], frame)
	return RecordHeaderLen + n
}

// segment is one RecordSegment's payload, decoded.
type segment struct {
	id         uint32
	off, total int
	data       []byte
}

// parseSegment decodes a RecordSegment payload.
func parseSegment(p []byte) (segment, bool) {
	if len(p) < segmentHeaderLen {
		return segment{}, false
	}
	s := segment{
		id:    binary.BigEndian.Uint32(p[0:4]),
		off:   int(binary.BigEndian.Uint32(p[4:8])),
		total: int(binary.BigEndian.Uint32(p[8:12])),
		data:  p[segmentHeaderLen:],
	}
	if s.total < VnetHdrLen+EthernetHeaderLen || s.total > maxBlob || s.off+len(s.data) > s.total || len(s.data) == 0 {
		return segment{}, false
	}
	return s, true
}
