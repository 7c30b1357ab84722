package mesh

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/weftnet/weft/internal/wire"
)

// Message tags: the first byte of every message after the handshake
// header. See docs/protocol-control.md. Receivers ignore unknown tags so
// that later versions may add messages.
const (
	tagFeatures        byte = 0 // first message only: features of the sender
	tagHeartbeat       byte = 1 // keepalive, empty payload
	tagClose           byte = 2 // reason text; the sender closes afterwards
	tagTopology        byte = 3 // topology entries
	tagGossip          byte = 4 // gossip channel: neighbour gossip (full state or delta)
	tagGossipUnicast   byte = 5 // gossip channel: unicast, routed hop by hop
	tagGossipBroadcast byte = 6 // gossip channel: broadcast along the tree of its source
	tagOverlayControl  byte = 7 // opaque message for the overlay connection
	tagIdentityProof   byte = 8 // last handshake message: signature over the connection's transcript
	tagTopologySummary byte = 9 // count and hash of the sender's topology entries
)

// encoder appends big-endian fields to a byte slice.
type encoder struct{ b []byte }

func (e *encoder) u8(v byte)      { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16)   { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32)   { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64)   { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) bytes(v []byte) { e.b = append(e.b, v...) }
func (e *encoder) name(n PeerName) {
	e.b = append(e.b, byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// str8 writes a string of at most 255 bytes with a 1-byte length; longer
// strings are cut (callers validate lengths beforehand where it matters).
func (e *encoder) str8(s string) {
	if len(s) > 255 {
		s = s[:255]
	}
	e.u8(byte(len(s)))
	e.b = append(e.b, s...)
}

// addr writes an address as family length (0, 4 or 16), address bytes, port.
func (e *encoder) addr(a netip.AddrPort) {
	ip := a.Addr().Unmap()
	switch {
	case ip.Is4():
		e.u8(4)
		v := ip.As4()
		e.bytes(v[:])
	case ip.Is6():
		e.u8(16)
		v := ip.As16()
		e.bytes(v[:])
	default:
		e.u8(0)
	}
	e.u16(a.Port())
}

// decoder reads the fields of a control message (wire.Decoder), with the
// mesh's own types; a read past the end is ErrTruncated.
type decoder struct{ wire.Decoder }

func newDecoder(b []byte) decoder { return decoder{wire.NewDecoder(b, ErrTruncated)} }

func (d *decoder) name() PeerName { return PeerName(d.U48()) }

func (d *decoder) addr() netip.AddrPort {
	var ip netip.Addr
	switch n := d.U8(); n {
	case 0:
	case 4:
		if v := d.Take(4); v != nil {
			ip = netip.AddrFrom4([4]byte(v))
		}
	case 16:
		if v := d.Take(16); v != nil {
			ip = netip.AddrFrom16([16]byte(v))
		}
	default:
		d.Fail(fmt.Errorf("bad address length %d", n))
	}
	port := d.U16()
	if !ip.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip, port)
}
