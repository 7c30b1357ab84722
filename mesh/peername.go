package mesh

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
)

// PeerName identifies a peer uniquely and persistently across restarts.
// Only the low 48 bits are used; it is written like a MAC address
// ("aa:bb:cc:dd:ee:ff") and encoded on the wire as 6 big-endian bytes.
type PeerName uint64

// UnknownPeerName is the zero PeerName; no real peer has it.
const UnknownPeerName PeerName = 0

// PeerNameLen is the length in bytes of an encoded PeerName.
const PeerNameLen = 6

const peerNameMask = 1<<48 - 1

// String formats the name as six colon-separated hex bytes.
func (n PeerName) String() string {
	var b [6]byte
	n.Put(b[:])
	return net.HardwareAddr(b[:]).String()
}

// Put writes the name into b[0:6] big-endian. b must be at least 6 bytes.
func (n PeerName) Put(b []byte) {
	_ = b[5]
	b[0] = byte(n >> 40)
	b[1] = byte(n >> 32)
	b[2] = byte(n >> 24)
	b[3] = byte(n >> 16)
	b[4] = byte(n >> 8)
	b[5] = byte(n)
}

// PeerNameFrom reads a name from b[0:6]. b must be at least 6 bytes.
func PeerNameFrom(b []byte) PeerName {
	_ = b[5]
	return PeerName(b[0])<<40 | PeerName(b[1])<<32 | PeerName(b[2])<<24 |
		PeerName(b[3])<<16 | PeerName(b[4])<<8 | PeerName(b[5])
}

// ParsePeerName parses a name written as a 48-bit MAC address.
func ParsePeerName(s string) (PeerName, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return UnknownPeerName, fmt.Errorf("invalid peer name %q: want six hex bytes like 7a:1f:00:00:00:01", s)
	}
	n := PeerNameFrom(hw)
	if n == UnknownPeerName {
		return UnknownPeerName, fmt.Errorf("invalid peer name %q: must not be all zero", s)
	}
	return n, nil
}

// RandomPeerName returns a fresh random name with the "locally
// administered, unicast" bits set, as for a generated MAC address.
func RandomPeerName() (PeerName, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return UnknownPeerName, fmt.Errorf("generate peer name: %w", err)
	}
	b[2] = (b[2] | 0x02) &^ 0x01 // byte 0 of the 48-bit name
	return PeerName(binary.BigEndian.Uint64(b[:]) & peerNameMask), nil
}
