package secure

// MessageChannel carries whole messages over a control connection: the
// mesh's framed channel has this shape. WriteMsg does not retain msg;
// ReadMsg's result is valid until the next ReadMsg. One goroutine may
// write while another reads.
type MessageChannel interface {
	WriteMsg(msg []byte) error
	ReadMsg() ([]byte, error)
}

// ControlChannel seals every message of an inner MessageChannel with the
// session's control ciphers. It is itself a MessageChannel, so the mesh
// swaps it in for its plain channel once the handshake completed. Same
// concurrency as the inner channel: one writer, one reader. After a read
// fails authentication, every later read fails: close the connection.
type ControlChannel struct {
	inner  MessageChannel
	sealer *ControlSealer
	opener *ControlOpener
	wbuf   []byte
}

// NewControlChannel wraps inner with the control ciphers of s. Call it
// once per session.
func NewControlChannel(inner MessageChannel, s *Session) *ControlChannel {
	return &ControlChannel{inner: inner, sealer: s.ControlSealer(), opener: s.ControlOpener()}
}

// WriteMsg seals msg and writes it as one inner message.
func (c *ControlChannel) WriteMsg(msg []byte) error {
	rec, err := c.sealer.Seal(c.wbuf[:0], msg)
	if err != nil {
		return err
	}
	err = c.inner.WriteMsg(rec)
	c.wbuf = rec
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil // do not keep a large buffer after a rare large message
	}
	return err
}

// ReadMsg reads one inner message and opens it in place. The result
// aliases the inner channel's buffer, valid until the next ReadMsg.
func (c *ControlChannel) ReadMsg() ([]byte, error) {
	rec, err := c.inner.ReadMsg()
	if err != nil {
		return nil, err
	}
	return c.opener.Open(rec[:0], rec)
}
