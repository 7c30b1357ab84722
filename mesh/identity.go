package mesh

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
)

// Identity is a router's long-term Ed25519 key. Its peer name is derived
// from the public key (NameOf), so a name cannot be claimed without the
// private key: a peer proves the key in every handshake and signs its own
// topology entry with it, and every router checks both. See
// docs/security.md, "Authenticated topology".
type Identity struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	name PeerName
}

// IdentityKeyLen is the length of an encoded public identity key.
const IdentityKeyLen = ed25519.PublicKeySize

// IdentitySeedLen is the length of the seed an identity is stored as.
const IdentitySeedLen = ed25519.SeedSize

// identitySigLen is the length of a signature by an identity key.
const identitySigLen = ed25519.SignatureSize

// NewIdentity makes a fresh identity from rand (crypto/rand.Reader in
// production).
func NewIdentity(rand io.Reader) (*Identity, error) {
	seed := make([]byte, IdentitySeedLen)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("new identity: %w", err)
	}
	return IdentityFromSeed(seed)
}

// IdentityFromSeed rebuilds an identity from its stored seed (Seed).
func IdentityFromSeed(seed []byte) (*Identity, error) {
	if len(seed) != IdentitySeedLen {
		return nil, fmt.Errorf("identity seed is %d bytes, want %d", len(seed), IdentitySeedLen)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	return &Identity{priv: priv, pub: pub, name: NameOf(pub)}, nil
}

// Seed returns the 32-byte seed to store; it is the private key.
func (id *Identity) Seed() []byte { return id.priv.Seed() }

// Public returns the public key.
func (id *Identity) Public() ed25519.PublicKey { return id.pub }

// Name returns the peer name derived from the public key.
func (id *Identity) Name() PeerName { return id.name }

// sign signs msg under a context label, so that a signature made for one
// purpose never verifies for another.
func (id *Identity) sign(context string, msg []byte) []byte {
	return ed25519.Sign(id.priv, contextMessage(context, msg))
}

// Sign signs msg for another subsystem under its own context label (one
// that none of the mesh's own contexts, which start "weft topology",
// "weft identity" and "weft gossip", can equal), so that a signature made
// for one purpose never verifies for another. VerifySignature checks it.
func (id *Identity) Sign(context string, msg []byte) []byte { return id.sign(context, msg) }

// VerifySignature checks a signature made by Identity.Sign with the same
// context, by the key pub (see Node.PeerKey).
func VerifySignature(pub ed25519.PublicKey, context string, msg, sig []byte) bool {
	return verifySig(pub, context, msg, sig)
}

// verifySig checks a signature made by sign with the same context.
func verifySig(pub ed25519.PublicKey, context string, msg, sig []byte) bool {
	if len(pub) != IdentityKeyLen || len(sig) != identitySigLen {
		return false
	}
	return ed25519.Verify(pub, contextMessage(context, msg), sig)
}

func contextMessage(context string, msg []byte) []byte {
	b := make([]byte, 0, len(context)+1+len(msg))
	b = append(b, context...)
	b = append(b, 0)
	return append(b, msg...)
}

// Signature contexts.
const (
	sigContextEntry  = "weft topology entry v2"
	sigContextProof  = "weft identity proof v2"
	sigContextGossip = "weft gossip v2"
)

// NameOf derives the peer name of a public identity key: the first six
// bytes of SHA-256 over a label and the key, with the "locally
// administered, unicast" bits of a generated MAC address set. Finding
// another key with a given name takes about 2^46 key generations.
func NameOf(pub ed25519.PublicKey) PeerName {
	h := sha256.New()
	h.Write([]byte("weft peer name v2"))
	h.Write([]byte{0})
	h.Write(pub)
	sum := h.Sum(nil)
	sum[0] = (sum[0] | 0x02) &^ 0x01
	return PeerNameFrom(sum[:PeerNameLen])
}

// nameMatchesKey reports whether name is the name of key.
func nameMatchesKey(name PeerName, key []byte) bool {
	return len(key) == IdentityKeyLen && NameOf(key) == name
}

// proveIdentity ends the handshake: each end signs a transcript of both
// ends' names, keys and connection nonces (fresh for every connection,
// one from each end) and its own role, sends the signature, and checks
// the other's. Only the holder of the private key of the name a peer
// claims can pass, and a proof cannot be replayed on another connection.
func proveIdentity(ch msgChannel, cfg handshakeConfig, remote features) error {
	sig := cfg.identity.sign(sigContextProof, proofTranscript(cfg.initiator, cfg.local, remote))
	msg := make([]byte, 0, 1+len(sig))
	msg = append(append(msg, tagIdentityProof), sig...)
	if err := ch.WriteMsg(msg); err != nil {
		return fmt.Errorf("handshake: write identity proof: %w", err)
	}
	got, err := ch.ReadMsg()
	if err != nil {
		return fmt.Errorf("handshake: read identity proof: %w", err)
	}
	if len(got) != 1+identitySigLen || got[0] != tagIdentityProof {
		return fmt.Errorf("handshake: %w: malformed identity proof (%d bytes)", ErrIdentityProof, len(got))
	}
	if !verifySig(remote.Key, sigContextProof, proofTranscript(!cfg.initiator, remote, cfg.local), got[1:]) {
		return fmt.Errorf("handshake: %w: the signature does not verify with the key of %s", ErrIdentityProof, remote.Name)
	}
	return nil
}

// proofTranscript is what the signer of an identity proof signs: its role,
// then its own and the other end's name, nonce and key.
func proofTranscript(signerInitiated bool, signer, other features) []byte {
	e := encoder{b: make([]byte, 0, 1+2*(PeerNameLen+8+IdentityKeyLen))}
	var role byte
	if signerInitiated {
		role = 1
	}
	e.u8(role)
	for _, f := range []features{signer, other} {
		e.name(f.Name)
		e.u64(f.ConnNonce)
		e.bytes(f.Key)
	}
	return e.b
}
