package nameserver

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/weftnet/weft/mesh"
)

// Wire format of a record set (docs/dns.md), all integers big-endian:
//
//	format  1 byte  (FormatVersion)
//	count   2 bytes (number of records)
//	count times:
//	  owner    6 bytes (mesh.PeerName)
//	  version  8 bytes
//	  flags    1 byte  (bit 0: tombstone; other bits zero)
//	  addr     4 bytes (IPv4)
//	  namelen  1 byte, name   (fully qualified, 1..254 bytes)
//	  tgtlen   1 byte, target (0..255 printable ASCII bytes)
//	  sig      64 bytes: the owner's Ed25519 signature (context
//	           SignatureContext) over the record's bytes above
const (
	// FormatVersion is the record-set encoding this package writes and reads.
	// Format 1 had 4-byte versions, which a member could pin at 2^32-1;
	// format 2 had no signatures, so a member could change another's
	// records (issue 16). Both are refused.
	FormatVersion = 3
	// SignatureContext is the context of a record's signature.
	SignatureContext = "weft dns record v3"
	// SigLen is the length of a record's signature.
	SigLen = 64
	// MaxEncodedSize is the largest encoded message Encode produces and
	// DecodeRecordSet accepts.
	MaxEncodedSize = 60000

	headerLen     = 3
	fixedLen      = mesh.PeerNameLen + 8 + 1 + 4 + 1 + 1
	minRecordLen  = fixedLen + 2 + SigLen // a name is at least "a."
	maxRecordLen  = fixedLen + 254 + MaxTargetLen + SigLen
	flagTombstone = 1
)

// Encode writes the set as one or more messages of at most MaxEncodedSize
// bytes each, records sorted. An empty set gives no messages.
func (s *RecordSet) Encode() [][]byte {
	var out [][]byte
	var buf []byte
	n := 0
	flush := func() {
		if n > 0 {
			binary.BigEndian.PutUint16(buf[1:3], uint16(n))
			out = append(out, buf)
		}
		buf, n = nil, 0
	}
	for _, r := range s.Records() {
		if buf != nil && (len(buf)+maxRecordLen > MaxEncodedSize || n == 0xffff) {
			flush()
		}
		if buf == nil {
			buf = make([]byte, headerLen, 1024)
			buf[0] = FormatVersion
		}
		buf = appendRecord(buf, &r)
		buf = appendSig(buf, r.Sig)
		n++
	}
	flush()
	return out
}

// appendSig appends a signature, or zeros for a record not signed (which
// no verifying store accepts).
func appendSig(b, sig []byte) []byte {
	if len(sig) != SigLen {
		return append(b, make([]byte, SigLen)...)
	}
	return append(b, sig...)
}

// signedBytes is what a record's signature covers: its encoding without
// the signature.
func (r *Record) signedBytes() []byte { return appendRecord(make([]byte, 0, 64), r) }

// appendRecord appends the record's fields without its signature.
func appendRecord(b []byte, r *Record) []byte {
	var fixed [fixedLen - 2]byte // everything before the name length
	r.Owner.Put(fixed[0:6])
	binary.BigEndian.PutUint64(fixed[6:14], r.Version)
	if r.Tombstone {
		fixed[14] = flagTombstone
	}
	a := r.Addr.As4()
	copy(fixed[15:19], a[:])
	b = append(b, fixed[:]...)
	b = append(b, byte(len(r.Name)))
	b = append(b, r.Name...)
	b = append(b, byte(len(r.Target)))
	return append(b, r.Target...)
}

// DecodeRecordSet parses one message written by Encode. It checks every
// record (valid name, IPv4 address, owner, version 1..MaxVersion) and returns an error
// wrapping ErrMalformed, ErrUnsupportedFormat or ErrTooLarge for bad input;
// it never panics.
func DecodeRecordSet(b []byte) (*RecordSet, error) {
	if len(b) > MaxEncodedSize {
		return nil, fmt.Errorf("decode DNS records: %w: %d bytes", ErrTooLarge, len(b))
	}
	if len(b) < headerLen {
		return nil, fmt.Errorf("decode DNS records: %w: %d bytes, short header", ErrMalformed, len(b))
	}
	if b[0] != FormatVersion {
		return nil, fmt.Errorf("decode DNS records: %w: version %d", ErrUnsupportedFormat, b[0])
	}
	count := int(binary.BigEndian.Uint16(b[1:3]))
	if count > (len(b)-headerLen)/minRecordLen {
		return nil, fmt.Errorf("decode DNS records: %w: %d records cannot fit in %d bytes", ErrMalformed, count, len(b))
	}
	set := &RecordSet{m: make(map[recordKey]Record, count)}
	p := b[headerLen:]
	for i := range count {
		r, rest, err := decodeRecord(p)
		if err != nil {
			return nil, fmt.Errorf("decode DNS records: record %d: %w", i, err)
		}
		set.add(r)
		p = rest
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("decode DNS records: %w: %d trailing bytes", ErrMalformed, len(p))
	}
	return set, nil
}

func decodeRecord(p []byte) (Record, []byte, error) {
	var r Record
	if len(p) < fixedLen {
		return r, nil, fmt.Errorf("%w: truncated record", ErrMalformed)
	}
	r.Owner = mesh.PeerNameFrom(p[0:6])
	r.Version = binary.BigEndian.Uint64(p[6:14])
	flags := p[14]
	if flags&^flagTombstone != 0 {
		return r, nil, fmt.Errorf("%w: unknown flags %#x", ErrMalformed, flags)
	}
	r.Tombstone = flags&flagTombstone != 0
	r.Addr = netip.AddrFrom4([4]byte(p[15:19]))
	nameLen := int(p[19])
	p = p[20:]
	if len(p) < nameLen+1 {
		return r, nil, fmt.Errorf("%w: truncated name", ErrMalformed)
	}
	r.Name = string(p[:nameLen])
	targetLen := int(p[nameLen])
	p = p[nameLen+1:]
	if len(p) < targetLen {
		return r, nil, fmt.Errorf("%w: truncated target", ErrMalformed)
	}
	r.Target = string(p[:targetLen])
	p = p[targetLen:]
	if len(p) < SigLen {
		return r, nil, fmt.Errorf("%w: truncated signature", ErrMalformed)
	}
	if !bytes.Equal(p[:SigLen], make([]byte, SigLen)) { // zeros: not signed
		r.Sig = append([]byte(nil), p[:SigLen]...)
	}
	if err := r.validate(); err != nil {
		return r, nil, err
	}
	return r, p[SigLen:], nil
}
