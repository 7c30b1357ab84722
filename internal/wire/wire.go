// Package wire reads the big-endian binary fields of weft's wire formats
// (the control protocol's messages, IPAM's gossip) from untrusted bytes.
// A Decoder never panics and never allocates beyond what it returns: the
// first read that runs past the end records an error, and every later read
// returns zero values, so a decoder reads a whole message and checks Err
// once. It is pure and has no state beyond the bytes it was given.
package wire

import (
	"encoding/binary"
	"fmt"
)

// Decoder reads fields from the front of a byte slice. The zero value
// reads nothing; use NewDecoder.
type Decoder struct {
	b         []byte
	err       error
	truncated error
}

// NewDecoder returns a decoder of b; a read past the end of b records
// truncated as the error.
func NewDecoder(b []byte, truncated error) Decoder {
	return Decoder{b: b, truncated: truncated}
}

// Err returns the first error, nil if every read so far succeeded.
func (d *Decoder) Err() error { return d.err }

// Fail records err unless an error is recorded already.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Len returns how many bytes are left.
func (d *Decoder) Len() int { return len(d.b) }

// Take returns the next n bytes (aliasing the input), or nil after an
// error or when fewer than n are left.
func (d *Decoder) Take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b) < n {
		d.err = d.truncated
		d.b = nil
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// U8 reads one byte.
func (d *Decoder) U8() byte {
	if v := d.Take(1); v != nil {
		return v[0]
	}
	return 0
}

// U16 reads a big-endian 16-bit integer.
func (d *Decoder) U16() uint16 {
	if v := d.Take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

// U32 reads a big-endian 32-bit integer.
func (d *Decoder) U32() uint32 {
	if v := d.Take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

// U48 reads a big-endian 48-bit integer (a peer name).
func (d *Decoder) U48() uint64 {
	if v := d.Take(6); v != nil {
		return uint64(v[0])<<40 | uint64(v[1])<<32 | uint64(v[2])<<24 | uint64(v[3])<<16 | uint64(v[4])<<8 | uint64(v[5])
	}
	return 0
}

// U64 reads a big-endian 64-bit integer.
func (d *Decoder) U64() uint64 {
	if v := d.Take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Str8 reads a string of at most 255 bytes behind a 1-byte length.
func (d *Decoder) Str8() string { return string(d.Take(int(d.U8()))) }

// Rest returns the remaining bytes (aliasing the input).
func (d *Decoder) Rest() []byte {
	if d.err != nil {
		return nil
	}
	v := d.b
	d.b = nil
	return v
}

// Done returns the first error, or an error if bytes remain.
func (d *Decoder) Done() error {
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%d trailing bytes", len(d.b))
	}
	return nil
}
