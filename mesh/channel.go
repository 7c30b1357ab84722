package mesh

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/weftnet/weft/secure"
)

// DefaultMaxMessageSize is the largest message accepted on a control
// connection unless Config.MaxMessageSize says otherwise.
const DefaultMaxMessageSize = 10 << 20

// msgChannel carries whole messages over the byte stream of a control
// connection once the handshake header has been exchanged. It is the seam
// for encryption: plainChannel frames messages with a length prefix;
// sealedChannel seals each message inside that framing when both ends set
// the password flag.
//
// WriteMsg and ReadMsg may be called concurrently with each other (one
// writer goroutine, one reader goroutine), but each is not safe for
// concurrent use with itself.
type msgChannel interface {
	// WriteMsg writes msg as one message. msg is not retained.
	WriteMsg(msg []byte) error
	// ReadMsg reads the next message. The returned slice is owned by the
	// channel and valid until the next ReadMsg.
	ReadMsg() ([]byte, error)
}

// Buffer sizes of plainChannel.ReadMsg: a message is read in steps that
// start at readChunk and double, so the buffer never runs ahead of what
// arrived by more than a factor of two; a buffer above keepReadBuf is
// dropped when a small message follows.
const (
	readChunk   = 16 << 10
	keepReadBuf = 64 << 10
)

// plainChannel frames each message as a 4-byte big-endian length followed
// by the message bytes.
type plainChannel struct {
	r    io.Reader
	w    io.Writer
	max  int
	rhdr [4]byte
	rbuf []byte
	wbuf []byte
}

func newPlainChannel(rw io.ReadWriter, maxSize int) *plainChannel {
	if maxSize <= 0 {
		maxSize = DefaultMaxMessageSize
	}
	return &plainChannel{r: rw, w: rw, max: maxSize}
}

// WriteMsg implements msgChannel.
func (c *plainChannel) WriteMsg(msg []byte) error {
	if len(msg) == 0 {
		return ErrEmptyMessage
	}
	if len(msg) > c.max {
		return fmt.Errorf("write %d bytes: %w (max %d)", len(msg), ErrMessageTooLarge, c.max)
	}
	c.wbuf = binary.BigEndian.AppendUint32(c.wbuf[:0], uint32(len(msg)))
	c.wbuf = append(c.wbuf, msg...)
	_, err := c.w.Write(c.wbuf)
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil // do not keep a large buffer after a rare large message
	}
	return err
}

// ReadMsg implements msgChannel.
func (c *plainChannel) ReadMsg() ([]byte, error) {
	if _, err := io.ReadFull(c.r, c.rhdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(c.rhdr[:])
	if n == 0 {
		return nil, ErrEmptyMessage
	}
	if uint64(n) > uint64(c.max) {
		return nil, fmt.Errorf("read %d bytes: %w (max %d)", n, ErrMessageTooLarge, c.max)
	}
	if cap(c.rbuf) > keepReadBuf && n <= keepReadBuf {
		c.rbuf = nil // do not keep a large buffer after a rare large message
	}
	// The buffer grows with the bytes that arrive, never ahead of them by
	// more than it already holds: a length claimed and not sent costs
	// nothing.
	buf := c.rbuf[:0]
	for len(buf) < int(n) {
		next := min(int(n), max(2*len(buf), readChunk, cap(buf)))
		if cap(buf) < next {
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			buf = grown
		}
		k, err := io.ReadFull(c.r, buf[len(buf):next])
		buf = buf[:len(buf)+k]
		if err != nil {
			c.rbuf = buf
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	c.rbuf = buf
	return buf, nil
}

// sealedChannel seals every message with the control keys of the
// connection's encrypted handshake (secure.ControlChannel over a
// plainChannel): each frame carries one sealed record, the message plus a
// 16-byte tag. It keeps the plain channel's limits on the message itself.
// A record that fails to open fails every later read: the connection is
// then closed.
type sealedChannel struct {
	inner *secure.ControlChannel
	max   int
}

// WriteMsg implements msgChannel.
func (c *sealedChannel) WriteMsg(msg []byte) error {
	if len(msg) == 0 {
		return ErrEmptyMessage
	}
	if len(msg) > c.max {
		return fmt.Errorf("write %d bytes: %w (max %d)", len(msg), ErrMessageTooLarge, c.max)
	}
	return c.inner.WriteMsg(msg)
}

// ReadMsg implements msgChannel.
func (c *sealedChannel) ReadMsg() ([]byte, error) {
	msg, err := c.inner.ReadMsg()
	if err != nil {
		return nil, err
	}
	if len(msg) == 0 {
		return nil, ErrEmptyMessage
	}
	return msg, nil
}
