package secure

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// HKDF labels (the info strings of HKDF-Expand). Each key has its own label,
// so no two uses share a key; "i2r" is initiator to responder.
const (
	labelControlI2R = "weft v1 control i2r"
	labelControlR2I = "weft v1 control r2i"
	labelDataI2R    = "weft v1 data i2r"
	labelDataR2I    = "weft v1 data r2i"
	labelConfirm    = "weft v1 key confirmation"
	labelDataKey    = "weft v1 data key"   // || epoch (4 bytes, big endian)
	labelDataChain  = "weft v1 data chain" // || next epoch (4 bytes, big endian)
)

// Session is the result of a completed handshake: the peer's identity
// payload, the negotiated data suite, the control-channel ciphers and the
// data-plane secrets. Sessions of different connections share no key.
type Session struct {
	initiator bool
	suite     Suite
	remote    []byte
	binding   [sha256.Size]byte
	confirm   [ConfirmLen]byte

	ctrlSend, ctrlRecv   [32]byte
	dataSend, dataRecv   [32]byte
	sendTaken, recvTaken bool // control keys handed out
	dataTaken            bool
}

// newSession derives every session key from the two Noise transport keys
// (k1 initiator to responder, k2 the reverse) and the handshake hash:
// PRK = HKDF-Extract(SHA-256, salt = handshake hash, ikm = k1 || k2), then
// one HKDF-Expand per label.
func newSession(initiator bool, suite Suite, remote, hash []byte, k1, k2 [32]byte) (*Session, error) {
	s := &Session{initiator: initiator, suite: suite, remote: remote}
	copy(s.binding[:], hash)
	ikm := make([]byte, 0, 64)
	ikm = append(append(ikm, k1[:]...), k2[:]...)
	prk, err := hkdf.Extract(sha256.New, ikm, hash)
	clear(ikm)
	if err != nil {
		return nil, fmt.Errorf("derive session keys: %w", err)
	}
	defer clear(prk)
	ctrlI2R, ctrlR2I := &s.ctrlSend, &s.ctrlRecv
	dataI2R, dataR2I := &s.dataSend, &s.dataRecv
	if !initiator {
		ctrlI2R, ctrlR2I = ctrlR2I, ctrlI2R
		dataI2R, dataR2I = dataR2I, dataI2R
	}
	for _, d := range []struct {
		out   []byte
		label string
	}{
		{s.confirm[:], labelConfirm},
		{ctrlI2R[:], labelControlI2R},
		{ctrlR2I[:], labelControlR2I},
		{dataI2R[:], labelDataI2R},
		{dataR2I[:], labelDataR2I},
	} {
		if err := expand(d.out, prk, d.label); err != nil {
			return nil, fmt.Errorf("derive session keys: %w", err)
		}
	}
	return s, nil
}

// expand fills out with HKDF-Expand(SHA-256, prk, info).
func expand(out, prk []byte, info string) error {
	k, err := hkdf.Expand(sha256.New, prk, info, len(out))
	if err != nil {
		return fmt.Errorf("hkdf expand %q: %w", info, err)
	}
	copy(out, k)
	clear(k)
	return nil
}

// epochInfo appends a big-endian epoch to a label.
func epochInfo(label string, epoch uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], epoch)
	return label + string(b[:])
}

// Initiator reports whether this side dialled the connection.
func (s *Session) Initiator() bool { return s.initiator }

// Suite is the negotiated data-plane AEAD.
func (s *Session) Suite() Suite { return s.suite }

// RemotePayload is the identity payload the peer passed in its Config.
// It is authenticated: it came from a holder of the password, in this
// handshake.
func (s *Session) RemotePayload() []byte { return s.remote }

// Binding is the Noise handshake hash: equal on both ends, different for
// every connection, usable as a channel binding or to derive a connection
// id both ends agree on.
func (s *Session) Binding() [sha256.Size]byte { return s.binding }

// ControlSealer returns the sealer for control messages this side sends
// and erases its key from the Session. Call it once per connection: later
// calls return a sealer that fails with ErrKeysTaken.
func (s *Session) ControlSealer() *ControlSealer {
	c := &ControlSealer{err: ErrKeysTaken}
	if !s.sendTaken {
		c.aead, c.err = newAEAD(SuiteChaCha20Poly1305, s.ctrlSend[:])
		clear(s.ctrlSend[:])
		s.sendTaken = true
	}
	return c
}

// ControlOpener returns the opener for control messages from the peer and
// erases its key from the Session. Call it once per connection: later
// calls return an opener that fails with ErrKeysTaken.
func (s *Session) ControlOpener() *ControlOpener {
	c := &ControlOpener{err: ErrKeysTaken}
	if !s.recvTaken {
		c.aead, c.err = newAEAD(SuiteChaCha20Poly1305, s.ctrlRecv[:])
		clear(s.ctrlRecv[:])
		s.recvTaken = true
	}
	return c
}

// NewKeyRing hands the data-plane secrets to a new KeyRing (epoch 0 in
// both directions) and erases them from the Session. It fails with
// ErrKeysTaken on a second call. Connections whose data is not encrypted
// (trusted subnets) simply never call it.
func (s *Session) NewKeyRing(p RekeyPolicy, now time.Time) (*KeyRing, error) {
	if s.dataTaken {
		return nil, ErrKeysTaken
	}
	r, err := newKeyRing(s.suite, s.dataSend, s.dataRecv, p, now)
	if err != nil {
		return nil, err
	}
	clear(s.dataSend[:])
	clear(s.dataRecv[:])
	s.dataTaken = true
	return r, nil
}
