package secure

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math"
)

// ControlOverhead is what sealing adds to a control message (the tag).
const ControlOverhead = tagLen

// ControlSealer seals the control messages one side sends, with an implicit
// counter nonce: records must reach the peer in the order they were sealed,
// none lost. The mesh's writer owns it: not safe for concurrent use; seal
// and write a record under the same lock.
type ControlSealer struct {
	aead  cipher.AEAD
	n     uint64
	nonce [12]byte
	err   error
}

// Seal appends the sealed msg (len(msg)+ControlOverhead bytes) to dst and
// returns the result.
func (c *ControlSealer) Seal(dst, msg []byte) ([]byte, error) {
	if c.err != nil {
		return dst, c.err
	}
	if c.n == math.MaxUint64 {
		c.err = ErrRekeyRequired
		return dst, c.err
	}
	binary.BigEndian.PutUint64(c.nonce[4:], c.n)
	c.n++
	return c.aead.Seal(dst, c.nonce[:], msg, nil), nil
}

// ControlOpener opens the control messages from the peer, in order. The
// mesh's reader owns it: not safe for concurrent use. After a failure it
// stays failed: the connection must be closed.
type ControlOpener struct {
	aead  cipher.AEAD
	n     uint64
	nonce [12]byte
	err   error
}

// Open authenticates and decrypts record, appending the message to dst.
// Any failure (forged, reordered, replayed or missing record) wraps
// ErrControlAuthentication.
func (c *ControlOpener) Open(dst, record []byte) ([]byte, error) {
	if c.err != nil {
		return dst, c.err
	}
	if len(record) < tagLen || c.n == math.MaxUint64 {
		c.err = fmt.Errorf("control record %d of %d bytes: %w", c.n, len(record), ErrControlAuthentication)
		return dst, c.err
	}
	binary.BigEndian.PutUint64(c.nonce[4:], c.n)
	out, err := c.aead.Open(dst, c.nonce[:], record, nil)
	if err != nil {
		c.err = fmt.Errorf("control record %d: %w", c.n, ErrControlAuthentication)
		return dst, c.err
	}
	c.n++
	return out, nil
}
