package secure

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/flynn/noise"
)

// ProtocolName names the secure protocol and its version. It starts the
// Noise prologue, so two routers speaking different versions fail the
// handshake instead of misreading each other.
const ProtocolName = "weft secure v1"

// payloadVersion is the first byte of both handshake payloads.
const payloadVersion = 1

// Limits on what the caller hands in.
const (
	// MaxPayloadLen is the largest caller payload (peer identity) a
	// handshake message carries.
	MaxPayloadLen = 32 << 10
	// MaxHeaderLen is the largest protocol header bound into the prologue.
	MaxHeaderLen = 4096
	// MaxHandshakeMessageLen bounds every handshake message; the mesh may
	// refuse longer frames before calling Step.
	MaxHandshakeMessageLen = dhLen + 2 + MaxPayloadLen + tagLen
	// ConfirmLen is the length of message 3, the key confirmation.
	ConfirmLen = 32
)

const (
	dhLen  = 32
	tagLen = 16
)

// noiseSuite is Noise_NNpsk0_25519_ChaChaPoly_SHA256.
var noiseSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

// Config configures one side of one handshake.
type Config struct {
	// PSK is the router's pre-shared key from DerivePSK. Required.
	PSK *PSK
	// LocalHeader and RemoteHeader are the plain protocol headers this side
	// sent and received on the connection before the handshake, byte for
	// byte. Both are bound into the handshake, so tampering with the
	// version or password flags of either side makes it fail.
	LocalHeader, RemoteHeader []byte
	// Payload is this side's identity (peer name, nickname, anything the
	// caller wants), opaque here. It travels encrypted and is bound into
	// the transcript; the peer gets it from Session.RemotePayload.
	Payload []byte
	// DataSuite is the data-plane AEAD preference; SuiteAuto (zero) offers
	// AES-256-GCM only on CPUs with AES instructions.
	DataSuite Suite
	// Rand is the source of ephemeral keys; nil means crypto/rand.
	Rand io.Reader

	// hasAES overrides CPU detection in tests; nil means HasAESHardware.
	hasAES func() bool
}

// handshake steps.
const (
	stepInitWrite1 = iota // initiator: write message 1
	stepInitRead2         // initiator: read message 2, write message 3
	stepRespRead1         // responder: read message 1, write message 2
	stepRespRead3         // responder: read message 3
	stepDone
	stepFailed
)

// Handshake is one side of the Noise NNpsk0 handshake plus a key
// confirmation message, as a state machine without I/O:
//
//	initiator                      responder
//	Step(nil)       -> msg1  ->    Step(msg1) -> msg2
//	Step(msg2) -> msg3 (done) ->   Step(msg3) -> nil (done)
//
// A Handshake is used by one goroutine. Any error is final.
type Handshake struct {
	initiator bool
	step      int
	hs        *noise.HandshakeState
	payload   []byte
	offer     byte
	session   *Session
	refusal   []byte
	rand      io.Reader
}

// NewInitiator starts the handshake for the side that dialled the control
// connection. Its first Step takes nil and returns message 1.
func NewInitiator(cfg Config) (*Handshake, error) {
	return newHandshake(cfg, true)
}

// NewResponder starts the handshake for the side that accepted the control
// connection. Its first Step takes message 1 and returns message 2.
func NewResponder(cfg Config) (*Handshake, error) {
	return newHandshake(cfg, false)
}

func newHandshake(cfg Config, initiator bool) (*Handshake, error) {
	if cfg.PSK == nil {
		return nil, ErrNoPSK
	}
	if len(cfg.Payload) > MaxPayloadLen || len(cfg.LocalHeader) > MaxHeaderLen || len(cfg.RemoteHeader) > MaxHeaderLen {
		return nil, ErrPayloadTooLong
	}
	hw := cfg.hasAES
	if hw == nil {
		hw = HasAESHardware
	}
	off, err := offer(cfg.DataSuite, hw())
	if err != nil {
		return nil, err
	}
	iHdr, rHdr := cfg.LocalHeader, cfg.RemoteHeader
	if !initiator {
		iHdr, rHdr = rHdr, iHdr
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           noiseSuite,
		Random:                cfg.Rand,
		Pattern:               noise.HandshakeNN,
		Initiator:             initiator,
		Prologue:              prologue(iHdr, rHdr),
		PresharedKey:          cfg.PSK.key[:],
		PresharedKeyPlacement: 0,
	})
	if err != nil {
		return nil, fmt.Errorf("noise handshake state: %w", err)
	}
	h := &Handshake{
		initiator: initiator,
		hs:        hs,
		payload:   append([]byte(nil), cfg.Payload...),
		offer:     off,
		step:      stepRespRead1,
		rand:      cfg.Rand,
	}
	if initiator {
		h.step = stepInitWrite1
	}
	return h, nil
}

// prologue binds the protocol name and both protocol headers, initiator's
// first: name || len16 || initiator header || len16 || responder header.
func prologue(iHdr, rHdr []byte) []byte {
	p := make([]byte, 0, len(ProtocolName)+4+len(iHdr)+len(rHdr))
	p = append(p, ProtocolName...)
	p = binary.BigEndian.AppendUint16(p, uint16(len(iHdr)))
	p = append(p, iHdr...)
	p = binary.BigEndian.AppendUint16(p, uint16(len(rHdr)))
	return append(p, rHdr...)
}

// Initiator reports whether this is the dialling side.
func (h *Handshake) Initiator() bool { return h.initiator }

// Done reports whether the handshake completed; Session is then available.
func (h *Handshake) Done() bool { return h.step == stepDone }

// Session returns the established session, or nil before Done.
func (h *Handshake) Session() *Session {
	if h.step != stepDone {
		return nil
	}
	return h.session
}

// Step consumes the peer's latest message (nil for the initiator's first
// step) and returns the message to send next, or nil when there is none.
// Authentication failures wrap ErrAuthentication, structural ones
// ErrMalformedHandshake; after any error the Handshake is dead.
func (h *Handshake) Step(in []byte) (out []byte, err error) {
	if len(in) > MaxHandshakeMessageLen {
		h.step = stepFailed
		return nil, fmt.Errorf("handshake message of %d bytes: %w", len(in), ErrMalformedHandshake)
	}
	switch h.step {
	case stepInitWrite1:
		if in != nil {
			err = ErrHandshakeState
		} else {
			out, err = h.writeMessage1()
		}
	case stepInitRead2:
		out, err = h.readMessage2(in)
	case stepRespRead1:
		out, err = h.readMessage1(in)
	case stepRespRead3:
		err = h.readMessage3(in)
	default:
		err = ErrHandshakeState
	}
	if err != nil {
		if h.step == stepRespRead1 && errors.Is(err, ErrAuthentication) {
			h.refusal = h.decoy()
		}
		h.step = stepFailed
		h.hs = nil
		return nil, err
	}
	return out, nil
}

// Refusal returns, after the responder failed to authenticate message 1,
// a message to send in place of message 2 before closing: random bytes
// that the initiator fails to authenticate in turn, so that both sides
// report ErrAuthentication (and nothing more is revealed: a peer without
// the password learns only that it was refused). Nil in every other case.
func (h *Handshake) Refusal() []byte { return h.refusal }

// decoy makes random bytes as long as a message 2 with this side's payload.
func (h *Handshake) decoy() []byte {
	r := h.rand
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, dhLen+2+len(h.payload)+tagLen)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil
	}
	return b
}

// Run drives the handshake to completion over caller-provided framing:
// send writes one message, recv reads one. It returns the session.
func (h *Handshake) Run(send func([]byte) error, recv func() ([]byte, error)) (*Session, error) {
	var in []byte
	for i := 0; !h.Done(); i++ {
		if i > 0 || !h.initiator {
			var err error
			if in, err = recv(); err != nil {
				return nil, fmt.Errorf("handshake: receive: %w", err)
			}
		}
		out, err := h.Step(in)
		if err != nil {
			if r := h.Refusal(); r != nil {
				_ = send(r) // best effort: the peer then fails too
			}
			return nil, fmt.Errorf("handshake: %w", err)
		}
		if out != nil {
			if err := send(out); err != nil {
				return nil, fmt.Errorf("handshake: send: %w", err)
			}
		}
	}
	return h.session, nil
}

// writeMessage1 writes psk, e and the encrypted payload
// [version][suite offer][caller payload].
func (h *Handshake) writeMessage1() ([]byte, error) {
	p := make([]byte, 0, 2+len(h.payload))
	p = append(p, payloadVersion, h.offer)
	p = append(p, h.payload...)
	msg, _, _, err := h.hs.WriteMessage(nil, p)
	if err != nil {
		return nil, fmt.Errorf("write message 1: %w", err)
	}
	h.step = stepInitRead2
	return msg, nil
}

// readMessage1 reads the initiator's message and writes message 2: e, ee
// and the encrypted payload [version][chosen suite][caller payload].
func (h *Handshake) readMessage1(in []byte) ([]byte, error) {
	if len(in) < dhLen+tagLen+2 {
		return nil, fmt.Errorf("read message 1: %d bytes: %w", len(in), ErrMalformedHandshake)
	}
	p, _, _, err := h.hs.ReadMessage(nil, in)
	if err != nil {
		return nil, fmt.Errorf("read message 1: %w", classify(err))
	}
	if len(p) < 2 {
		return nil, fmt.Errorf("read message 1: payload: %w", ErrMalformedHandshake)
	}
	if p[0] != payloadVersion {
		return nil, fmt.Errorf("read message 1: version %d: %w", p[0], ErrUnsupportedVersion)
	}
	theirs := p[1]
	if theirs&offerChaCha == 0 || theirs&^offerKnown != 0 {
		return nil, fmt.Errorf("read message 1: suite offer %#x: %w", theirs, ErrMalformedHandshake)
	}
	suite := choose(theirs, h.offer)
	remote := append([]byte(nil), p[2:]...)

	reply := make([]byte, 0, 2+len(h.payload))
	reply = append(reply, payloadVersion, byte(suite))
	reply = append(reply, h.payload...)
	msg, cs1, cs2, err := h.hs.WriteMessage(nil, reply)
	if err != nil {
		return nil, fmt.Errorf("write message 2: %w", err)
	}
	if cs1 == nil || cs2 == nil {
		return nil, fmt.Errorf("write message 2: handshake did not split: %w", ErrHandshakeState)
	}
	if h.session, err = newSession(false, suite, remote, h.hs.ChannelBinding(), cs1.UnsafeKey(), cs2.UnsafeKey()); err != nil {
		return nil, err
	}
	h.step = stepRespRead3
	return msg, nil
}

// readMessage2 reads the responder's message, completes the session and
// writes message 3, the key confirmation.
func (h *Handshake) readMessage2(in []byte) ([]byte, error) {
	if len(in) < dhLen+tagLen+2 {
		return nil, fmt.Errorf("read message 2: %d bytes: %w", len(in), ErrMalformedHandshake)
	}
	p, cs1, cs2, err := h.hs.ReadMessage(nil, in)
	if err != nil {
		return nil, fmt.Errorf("read message 2: %w", classify(err))
	}
	if cs1 == nil || cs2 == nil {
		return nil, fmt.Errorf("read message 2: handshake did not split: %w", ErrHandshakeState)
	}
	if len(p) < 2 {
		return nil, fmt.Errorf("read message 2: payload: %w", ErrMalformedHandshake)
	}
	if p[0] != payloadVersion {
		return nil, fmt.Errorf("read message 2: version %d: %w", p[0], ErrUnsupportedVersion)
	}
	suite := Suite(p[1])
	if suite != SuiteChaCha20Poly1305 && !(suite == SuiteAES256GCM && h.offer&offerAES != 0) {
		return nil, fmt.Errorf("read message 2: suite %v not offered: %w", suite, ErrMalformedHandshake)
	}
	remote := append([]byte(nil), p[2:]...)
	if h.session, err = newSession(true, suite, remote, h.hs.ChannelBinding(), cs1.UnsafeKey(), cs2.UnsafeKey()); err != nil {
		return nil, err
	}
	h.step = stepDone
	h.hs = nil
	c := h.session.confirm
	return c[:], nil
}

// readMessage3 checks the initiator's key confirmation. Before it, the
// responder cannot tell a fresh initiator from a replayed message 1.
func (h *Handshake) readMessage3(in []byte) error {
	if len(in) != ConfirmLen {
		return fmt.Errorf("read message 3: %d bytes: %w", len(in), ErrMalformedHandshake)
	}
	if subtle.ConstantTimeCompare(in, h.session.confirm[:]) != 1 {
		return fmt.Errorf("read message 3: key confirmation: %w", ErrAuthentication)
	}
	h.step = stepDone
	h.hs = nil
	return nil
}

// classify maps Noise read errors: short messages are malformed, the rest
// (failed AEAD tags, invalid DH points) are authentication failures.
func classify(err error) error {
	if errors.Is(err, noise.ErrShortMessage) {
		return fmt.Errorf("%v: %w", err, ErrMalformedHandshake)
	}
	return fmt.Errorf("%v: %w", err, ErrAuthentication)
}
