package secure

import "errors"

// Handshake errors. The first three are the standard reasons a refused
// connection is shown with in `weft status connections`; see Reason.
var (
	// ErrAuthentication means a handshake message failed authentication:
	// the peer uses a different password, or the message was tampered with
	// (the two cannot be told apart).
	ErrAuthentication = errors.New("authentication failed: password mismatch")
	// ErrPeerRequiresPassword means the peer uses a password and we do not.
	ErrPeerRequiresPassword = errors.New("authentication failed: peer requires a password, we have none")
	// ErrPeerHasNoPassword means we use a password and the peer does not.
	ErrPeerHasNoPassword = errors.New("authentication failed: peer has no password, we require one")
	// ErrMalformedHandshake means a handshake message has the wrong length
	// or an invalid field after decryption.
	ErrMalformedHandshake = errors.New("malformed handshake message")
	// ErrUnsupportedVersion means the peer speaks another version of the
	// secure protocol.
	ErrUnsupportedVersion = errors.New("unsupported secure protocol version")
	// ErrHandshakeState means Step was called out of order, after the
	// handshake completed, or after it failed.
	ErrHandshakeState = errors.New("handshake step out of order")
	// ErrNoPSK means a Config has no pre-shared key.
	ErrNoPSK = errors.New("no pre-shared key: encryption needs a password")
	// ErrEmptyPassword means DerivePSK was given an empty password.
	ErrEmptyPassword = errors.New("empty password")
	// ErrPayloadTooLong means the caller's handshake payload or protocol
	// header exceeds its limit.
	ErrPayloadTooLong = errors.New("handshake payload too long")
	// ErrKeysTaken means keys of a Session were already handed out (to a
	// KeyRing, ControlSealer or ControlOpener); each is handed out once.
	ErrKeysTaken = errors.New("session data keys already taken")
)

// Control channel errors.
var (
	// ErrControlAuthentication means a control record failed to open: it
	// was forged, reordered, replayed or dropped. The ControlOpener is
	// unusable afterwards and the connection must be closed.
	ErrControlAuthentication = errors.New("control message authentication failed")
)

// Data plane errors. Datagrams failing with any of them are to be dropped
// and counted, never logged one by one.
var (
	// ErrForged means a datagram failed authentication.
	ErrForged = errors.New("datagram authentication failed")
	// ErrReplay means a datagram's counter was already seen or is older
	// than the replay window.
	ErrReplay = errors.New("datagram replayed or too old")
	// ErrUnknownKey means no current receiving key has the datagram's key id.
	ErrUnknownKey = errors.New("datagram for unknown key")
	// ErrExpiredKey means the datagram was sealed under the previous key
	// and its grace period is over.
	ErrExpiredKey = errors.New("datagram for expired key")
	// ErrShortDatagram means a sealed datagram is shorter than the tag.
	ErrShortDatagram = errors.New("sealed datagram shorter than tag")
	// ErrShortBuffer means a payload slice has no room for the tag.
	ErrShortBuffer = errors.New("no room for tag after payload")
	// ErrRekeyRequired means a sealing key has used up its counters; the
	// caller must move to a new key (KeyRing does this by itself).
	ErrRekeyRequired = errors.New("key exhausted: rekey required")
	// ErrBadKey means a key has the wrong length or an unknown suite.
	ErrBadKey = errors.New("invalid key or suite")
)
