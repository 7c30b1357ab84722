package fastdp

import (
	"encoding/binary"
	"fmt"

	"github.com/weftnet/weft/mesh"
)

// EtherType is the EtherType of heartbeat frames: IEEE 802's "local
// experimental" type, which no protocol on the weft network uses.
const EtherType = 0x88B5

// Heartbeat frame layout (docs/protocol-data.md, "Fast path").
const (
	// HeaderLen is the length of a heartbeat frame without padding.
	HeaderLen = 32
	// Version is the heartbeat format version.
	Version = 1

	offType    = 12
	offVersion = 14
	offFlags   = 15
	offSender  = 16
	offUID     = 24

	flagHearsYou = 1 // the sender heard the receiver's heartbeats within its timeout
)

// MAC is an Ethernet address.
type MAC = [6]byte

// HeartbeatMAC returns the MAC that heartbeats to peer are addressed to:
// a locally administered unicast address derived from the peer name
// (FNV-1a), which no container uses by chance (1 in 2^40).
func HeartbeatMAC(peer mesh.PeerName) MAC {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(peer))
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return MAC{0x7a, byte(h >> 32), byte(h >> 24), byte(h >> 16), byte(h >> 8), byte(h)}
}

// heartbeat is a decoded heartbeat frame.
type heartbeat struct {
	dst, src MAC
	hearsYou bool
	sender   mesh.PeerName
	uid      uint64
}

// putHeartbeat writes a heartbeat into buf, zero-padded to len(buf),
// which must be at least HeaderLen.
func putHeartbeat(buf []byte, h heartbeat) {
	copy(buf[0:6], h.dst[:])
	copy(buf[6:12], h.src[:])
	binary.BigEndian.PutUint16(buf[offType:], EtherType)
	buf[offVersion] = Version
	buf[offFlags] = 0
	if h.hearsYou {
		buf[offFlags] = flagHearsYou
	}
	binary.BigEndian.PutUint64(buf[offSender:], uint64(h.sender))
	binary.BigEndian.PutUint64(buf[offUID:], h.uid)
	clear(buf[HeaderLen:])
}

// parseHeartbeat decodes a heartbeat frame; padding is ignored, unknown
// flags too.
func parseHeartbeat(b []byte) (heartbeat, error) {
	var h heartbeat
	if len(b) < HeaderLen {
		return h, fmt.Errorf("parse heartbeat of %d bytes: %w", len(b), ErrShortFrame)
	}
	if binary.BigEndian.Uint16(b[offType:]) != EtherType || b[offVersion] != Version {
		return h, fmt.Errorf("parse heartbeat: type %#04x version %d: %w",
			binary.BigEndian.Uint16(b[offType:]), b[offVersion], ErrNotHeartbeat)
	}
	copy(h.dst[:], b[0:6])
	copy(h.src[:], b[6:12])
	h.hearsYou = b[offFlags]&flagHearsYou != 0
	h.sender = mesh.PeerName(binary.BigEndian.Uint64(b[offSender:]))
	h.uid = binary.BigEndian.Uint64(b[offUID:])
	return h, nil
}
