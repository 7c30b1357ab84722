package secure

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"runtime"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"
)

// Suite is the AEAD that seals data-plane datagrams. It is negotiated in the
// handshake: the initiator offers what it supports, the responder picks.
type Suite uint8

const (
	// SuiteAuto is the Config value meaning "offer AES-256-GCM only when
	// this CPU has AES instructions". It never appears on the wire.
	SuiteAuto Suite = 0
	// SuiteChaCha20Poly1305 is ChaCha20-Poly1305 (RFC 8439). Every router
	// supports it.
	SuiteChaCha20Poly1305 Suite = 1
	// SuiteAES256GCM is AES-256 in GCM mode. Chosen only when both ends
	// have AES hardware, where it is faster.
	SuiteAES256GCM Suite = 2
)

// String names the suite as status output shows it.
func (s Suite) String() string {
	switch s {
	case SuiteAuto:
		return "auto"
	case SuiteChaCha20Poly1305:
		return "chacha20-poly1305"
	case SuiteAES256GCM:
		return "aes-256-gcm"
	}
	return fmt.Sprintf("suite(%d)", uint8(s))
}

// Suite offer bits in the initiator's handshake payload.
const (
	offerChaCha = 1 << 0
	offerAES    = 1 << 1
	offerKnown  = offerChaCha | offerAES
)

// HasAESHardware reports whether this CPU has instructions that make
// AES-GCM constant time and fast (AES plus carry-less multiply).
func HasAESHardware() bool {
	switch runtime.GOARCH {
	case "amd64", "386":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	case "s390x":
		return cpu.S390X.HasAES && cpu.S390X.HasAESGCM
	case "ppc64le":
		return true // POWER8 and later have vcipher/vpmsumd, used by crypto/aes
	}
	return false
}

// offer returns the offer bits for a configured preference.
func offer(pref Suite, hw bool) (byte, error) {
	switch pref {
	case SuiteAuto:
		if hw {
			return offerChaCha | offerAES, nil
		}
		return offerChaCha, nil
	case SuiteChaCha20Poly1305:
		return offerChaCha, nil
	case SuiteAES256GCM:
		return offerChaCha | offerAES, nil
	}
	return 0, fmt.Errorf("data suite %v: %w", pref, ErrBadKey)
}

// choose picks the suite from both ends' offers: AES-256-GCM when both
// offer it, ChaCha20-Poly1305 otherwise.
func choose(initiator, responder byte) Suite {
	if initiator&responder&offerAES != 0 {
		return SuiteAES256GCM
	}
	return SuiteChaCha20Poly1305
}

// newAEAD makes the AEAD of suite s with a 32-byte key.
func newAEAD(s Suite, key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, ErrBadKey
	}
	switch s {
	case SuiteChaCha20Poly1305:
		return chacha20poly1305.New(key)
	case SuiteAES256GCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	}
	return nil, fmt.Errorf("suite %v: %w", s, ErrBadKey)
}
