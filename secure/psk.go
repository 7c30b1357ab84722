package secure

import (
	"crypto/subtle"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters used to stretch the password into the pre-shared key.
// They are part of protocol version 1: every router of a network must use the
// same values, so they are constants. They follow the second recommended
// option of RFC 9106 (64 MiB, 3 passes, 4 lanes).
const (
	// Argon2Time is the number of passes over memory.
	Argon2Time = 3
	// Argon2MemoryKiB is the memory cost in KiB (64 MiB).
	Argon2MemoryKiB = 64 * 1024
	// Argon2Threads is the number of lanes (it changes the output, not
	// only the speed).
	Argon2Threads = 4
	// PSKSalt is the fixed, versioned salt. Both ends must derive the same
	// key before any message is exchanged, so the salt cannot be random; it
	// names the protocol and version so keys never collide with other uses
	// of the same password.
	PSKSalt = "weft/secure/v1/psk/argon2id"
	// PSKLen is the length of the pre-shared key in bytes.
	PSKLen = 32
)

// PSK is the pre-shared key stretched from the network password. Derive it
// once per router at start (it deliberately costs about a tenth of a second
// and 64 MiB) and share it, read-only, between all connections.
type PSK struct {
	key [PSKLen]byte
}

// DerivePSK stretches password with Argon2id into the pre-shared key. The
// password is used byte for byte: callers reading it from a file should
// strip the trailing newline first.
func DerivePSK(password []byte) (*PSK, error) {
	if len(password) == 0 {
		return nil, ErrEmptyPassword
	}
	return derivePSK(password, Argon2Time, Argon2MemoryKiB, Argon2Threads), nil
}

// NewPSK wraps a uniformly random 32-byte key as a PSK without stretching,
// for callers that already hold one (tests of other packages, which cannot
// spend a second per router on Argon2id). Never pass a password here.
func NewPSK(key []byte) (*PSK, error) {
	if len(key) != PSKLen {
		return nil, ErrBadKey
	}
	p := &PSK{}
	copy(p.key[:], key)
	return p, nil
}

// derivePSK is DerivePSK with explicit cost parameters, for tests and fuzz
// targets that cannot afford 64 MiB per run.
func derivePSK(password []byte, time, memKiB uint32, threads uint8) *PSK {
	p := &PSK{}
	copy(p.key[:], argon2.IDKey(password, []byte(PSKSalt), time, memKiB, threads, PSKLen))
	return p
}

// Equal reports whether two keys are equal, in constant time.
func (p *PSK) Equal(q *PSK) bool {
	if p == nil || q == nil {
		return p == q
	}
	return subtle.ConstantTimeCompare(p.key[:], q.key[:]) == 1
}
