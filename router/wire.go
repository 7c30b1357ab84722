package router

import (
	"encoding/binary"
	"fmt"

	"github.com/weftnet/weft/mesh"
)

// Wire format constants; docs/protocol-data.md describes the layout byte
// by byte.
const (
	// Version is the datagram format version this package speaks.
	Version = 1
	// HeaderLen is the length of the datagram header.
	HeaderLen = 20
	// TagLen is the length of the authentication tag that ends every
	// datagram. Unsealed datagrams carry zeros there.
	TagLen = 16
	// DatagramOverhead is what the header and tag add to a datagram body.
	DatagramOverhead = HeaderLen + TagLen
	// RecordHeaderLen is the length of the header in front of each frame.
	RecordHeaderLen = 16
	// EthernetHeaderLen is the length of an untagged Ethernet header.
	EthernetHeaderLen = 14
	// FrameOverhead is what the overlay adds to an IP packet sent alone in
	// one datagram: datagram header and tag, record header, Ethernet header.
	// The UDP payload for an IP packet of MTU bytes is MTU+FrameOverhead.
	FrameOverhead = DatagramOverhead + RecordHeaderLen + EthernetHeaderLen
	// UnderlayOverhead is the IPv4 and UDP header in front of a datagram.
	UnderlayOverhead = 28
	// MaxDatagram is the largest UDP payload over IPv4.
	MaxDatagram = 65535 - UnderlayOverhead
	// MaxMTU is the largest overlay MTU a datagram can carry.
	MaxMTU = MaxDatagram - FrameOverhead
	// MinMTU is the floor of path MTU probing (the smallest MTU every IPv4
	// path must carry after fragmentation, as Linux assumes).
	MinMTU = 552
)

// Datagram types (header byte 1).
const (
	// TypeFrames carries a sequence of records.
	TypeFrames uint8 = 1
	// TypeHeartbeat carries the ConnUID of the connection.
	TypeHeartbeat uint8 = 2
	// TypeProbe is a path MTU probe padded to the candidate size.
	TypeProbe uint8 = 3
	// TypeProbeAck answers a probe that arrived.
	TypeProbeAck uint8 = 4
	// TypePathChallenge carries a nonce to a new address of the peer of an
	// unencrypted connection; the peer echoes it over the control
	// connection (pathchange.go).
	TypePathChallenge uint8 = 5
)

// Header flags (header byte 2).
const (
	// FlagSealed marks a datagram whose body is encrypted and whose tag is
	// an AEAD tag: every datagram of a connection with data keys (see
	// seal.go). It is authenticated with the header, so it cannot be
	// stripped.
	FlagSealed uint8 = 1 << 0
)

// Record types (record byte 0).
const (
	// RecordFrame carries one whole Ethernet frame.
	RecordFrame uint8 = 1
	// RecordSegment carries one piece of a frame and its virtio-net header
	// too large for one datagram (see vnet.go); the next hop reassembles.
	RecordSegment uint8 = 2
	// RecordVnet carries a virtio-net header followed by a whole frame.
	RecordVnet uint8 = 3
)

// BroadcastPeer is the destination peer of a record that travels along
// the broadcast tree of its source peer.
const BroadcastPeer = mesh.UnknownPeerName

// Header is the decoded fixed header of a datagram.
type Header struct {
	// Type is one of the Type constants.
	Type uint8
	// Flags is a set of Flag bits.
	Flags uint8
	// KeyID names the key epoch a sealed datagram is sealed with; 0 when
	// unsealed.
	KeyID uint8
	// Sender is the peer that sent this datagram (the previous hop).
	Sender mesh.PeerName
	// Counter increases with every datagram a sender sends on one
	// connection; it is the AEAD nonce once datagrams are sealed.
	Counter uint64
}

// Record is one decoded record of a frames datagram. Frame aliases the
// datagram buffer.
type Record struct {
	// Type is one of the Record constants; unknown types are skipped.
	Type uint8
	// Flags is reserved and zero.
	Flags uint8
	// Src is the peer that captured the frame.
	Src mesh.PeerName
	// Dst is the destination peer, or BroadcastPeer.
	Dst mesh.PeerName
	// Frame is the record's payload: an Ethernet frame for RecordFrame.
	Frame []byte
}

// PutHeader writes h into b[:HeaderLen] with the current Version.
// b must be at least HeaderLen bytes long.
func PutHeader(b []byte, h Header) {
	_ = b[HeaderLen-1]
	b[0] = Version
	b[1] = h.Type
	b[2] = h.Flags
	b[3] = h.KeyID
	h.Sender.Put(b[4:10])
	b[10], b[11] = 0, 0
	binary.BigEndian.PutUint64(b[12:20], h.Counter)
}

// PutTag writes an all-zero tag into b[:TagLen], ending an unsealed
// datagram. b must be at least TagLen bytes long.
func PutTag(b []byte) {
	clear(b[:TagLen])
}

// ParseHeader decodes the header of datagram b and returns it with the
// body, which lies between header and tag and aliases b.
func ParseHeader(b []byte) (Header, []byte, error) {
	if len(b) < DatagramOverhead {
		return Header{}, nil, fmt.Errorf("parse header: %d bytes: %w", len(b), ErrShortDatagram)
	}
	if b[0] != Version {
		return Header{}, nil, fmt.Errorf("parse header: version %d: %w", b[0], ErrBadVersion)
	}
	h := Header{
		Type:    b[1],
		Flags:   b[2],
		KeyID:   b[3],
		Sender:  mesh.PeerNameFrom(b[4:10]),
		Counter: binary.BigEndian.Uint64(b[12:20]),
	}
	return h, b[HeaderLen : len(b)-TagLen], nil
}

// PutRecord writes a record header and frame into b and returns the
// number of bytes written. b must hold RecordHeaderLen+len(frame) bytes
// and len(frame) must fit in 16 bits.
func PutRecord(b []byte, typ uint8, src, dst mesh.PeerName, frame []byte) int {
	_ = b[RecordHeaderLen+len(frame)-1]
	b[0] = typ
	b[1] = 0
	binary.BigEndian.PutUint16(b[2:4], uint16(len(frame)))
	src.Put(b[4:10])
	dst.Put(b[10:16])
	copy(b[RecordHeaderLen:], frame)
	return RecordHeaderLen + len(frame)
}

// ParseRecord decodes the record at the start of body and returns it with
// the number of bytes it occupies. Frame records must hold at least an
// Ethernet header.
func ParseRecord(body []byte) (Record, int, error) {
	if len(body) < RecordHeaderLen {
		return Record{}, 0, fmt.Errorf("parse record: %d bytes left: %w", len(body), ErrBadRecord)
	}
	n := int(binary.BigEndian.Uint16(body[2:4]))
	end := RecordHeaderLen + n
	if end > len(body) {
		return Record{}, 0, fmt.Errorf("parse record: length %d exceeds %d: %w", n, len(body)-RecordHeaderLen, ErrBadRecord)
	}
	r := Record{
		Type:  body[0],
		Flags: body[1],
		Src:   mesh.PeerNameFrom(body[4:10]),
		Dst:   mesh.PeerNameFrom(body[10:16]),
		Frame: body[RecordHeaderLen:end:end],
	}
	if (r.Type == RecordFrame && n < EthernetHeaderLen) || (r.Type == RecordVnet && n < VnetHdrLen+EthernetHeaderLen) {
		return Record{}, 0, fmt.Errorf("parse record: frame of %d bytes: %w", n, ErrBadRecord)
	}
	return r, end, nil
}

// Bodies of the control datagrams.
const (
	heartbeatBodyLen = 8         // ConnUID
	probeBodyMin     = 8 + 4     // ConnUID, probe id, padding
	probeAckBodyLen  = 8 + 4 + 4 // ConnUID, probe id, size received
)

// putHeartbeat writes a whole heartbeat datagram into b and returns its
// length.
func putHeartbeat(b []byte, sender mesh.PeerName, counter, uid uint64) int {
	PutHeader(b, Header{Type: TypeHeartbeat, Sender: sender, Counter: counter})
	binary.BigEndian.PutUint64(b[HeaderLen:], uid)
	n := HeaderLen + heartbeatBodyLen
	PutTag(b[n:])
	return n + TagLen
}

// parseHeartbeat returns the ConnUID of a heartbeat body.
func parseHeartbeat(body []byte) (uint64, error) {
	if len(body) != heartbeatBodyLen {
		return 0, fmt.Errorf("parse heartbeat: %d bytes: %w", len(body), ErrBadBody)
	}
	return binary.BigEndian.Uint64(body), nil
}

// putProbe writes a probe datagram of exactly size bytes into b and
// returns size; b must hold size bytes.
func putProbe(b []byte, size int, sender mesh.PeerName, counter, uid uint64, id uint32) int {
	PutHeader(b, Header{Type: TypeProbe, Sender: sender, Counter: counter})
	binary.BigEndian.PutUint64(b[HeaderLen:], uid)
	binary.BigEndian.PutUint32(b[HeaderLen+8:], id)
	clear(b[HeaderLen+probeBodyMin : size])
	return size
}

// parseProbe returns the ConnUID and probe id of a probe body.
func parseProbe(body []byte) (uid uint64, id uint32, err error) {
	if len(body) < probeBodyMin {
		return 0, 0, fmt.Errorf("parse probe: %d bytes: %w", len(body), ErrBadBody)
	}
	return binary.BigEndian.Uint64(body), binary.BigEndian.Uint32(body[8:]), nil
}

// putProbeAck writes a probe-ack datagram into b and returns its length.
func putProbeAck(b []byte, sender mesh.PeerName, counter, uid uint64, id uint32, size int) int {
	PutHeader(b, Header{Type: TypeProbeAck, Sender: sender, Counter: counter})
	binary.BigEndian.PutUint64(b[HeaderLen:], uid)
	binary.BigEndian.PutUint32(b[HeaderLen+8:], id)
	binary.BigEndian.PutUint32(b[HeaderLen+12:], uint32(size))
	n := HeaderLen + probeAckBodyLen
	PutTag(b[n:])
	return n + TagLen
}

// parseProbeAck returns the ConnUID, probe id and acknowledged size.
func parseProbeAck(body []byte) (uid uint64, id uint32, size int, err error) {
	if len(body) != probeAckBodyLen {
		return 0, 0, 0, fmt.Errorf("parse probe ack: %d bytes: %w", len(body), ErrBadBody)
	}
	return binary.BigEndian.Uint64(body), binary.BigEndian.Uint32(body[8:]), int(binary.BigEndian.Uint32(body[12:])), nil
}
