package secure

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
)

// TagLen is what sealing adds after a datagram's payload.
const TagLen = tagLen

// RejectAfterMessages is the default hard limit of datagrams sealed under
// one key; KeyRing rekeys long before (RekeyPolicy.AfterMessages).
const RejectAfterMessages uint64 = 1 << 32

// noncePool holds 12-byte nonce buffers. Passing a stack array to an AEAD
// (an interface) would move it to the heap on every call; a pool keeps the
// per-datagram path free of allocations while staying safe for concurrent
// use.
type noncePool struct{ p sync.Pool }

func newNoncePool() *noncePool {
	return &noncePool{p: sync.Pool{New: func() any { return new([12]byte) }}}
}

// get returns a nonce buffer holding counter c: 4 zero bytes, then c big
// endian. Keys are unique per direction and epoch, so the counter alone
// makes the nonce unique.
func (p *noncePool) get(c uint64) *[12]byte {
	n := p.p.Get().(*[12]byte)
	binary.BigEndian.PutUint64(n[4:], c)
	return n
}

func (p *noncePool) put(n *[12]byte) { p.p.Put(n) }

// Sealer seals the datagrams of one direction under one key (one epoch).
// Counters come from Next, which never hands out the same one twice. Safe
// for concurrent use.
type Sealer struct {
	aead   cipher.AEAD
	epoch  uint32
	limit  uint64
	next   atomic.Uint64
	nonces *noncePool
}

// NewSealer makes a sealer for suite with a 32-byte key, for the given
// epoch; it refuses counters from limit on (0 means RejectAfterMessages).
// KeyRing makes sealers itself; this is for tests and special callers.
func NewSealer(suite Suite, key []byte, epoch uint32, limit uint64) (*Sealer, error) {
	return newSealer(suite, key, epoch, limit, newNoncePool())
}

func newSealer(suite Suite, key []byte, epoch uint32, limit uint64, np *noncePool) (*Sealer, error) {
	a, err := newAEAD(suite, key)
	if err != nil {
		return nil, fmt.Errorf("new sealer: %w", err)
	}
	if limit == 0 {
		limit = RejectAfterMessages
	}
	return &Sealer{aead: a, epoch: epoch, limit: limit, nonces: np}, nil
}

// Epoch is the key's epoch.
func (s *Sealer) Epoch() uint32 { return s.epoch }

// KeyID is the low byte of the epoch: what a datagram header carries so
// that the receiver finds the key (see KeyRing.Open).
func (s *Sealer) KeyID() uint8 { return uint8(s.epoch) }

// Next reserves the next counter. From the limit on it returns
// ErrRekeyRequired: the caller must move to a new key.
func (s *Sealer) Next() (uint64, error) {
	c := s.next.Add(1) - 1
	if c >= s.limit {
		s.next.Store(s.limit) // keep it from wrapping however often we are asked
		return 0, ErrRekeyRequired
	}
	return c, nil
}

// Used is how many counters were handed out.
func (s *Sealer) Used() uint64 { return min(s.next.Load(), s.limit) }

// Seal encrypts payload in place under counter (from Next), authenticating
// header as additional data, and returns payload extended by TagLen bytes.
// payload must have capacity for the tag (ErrShortBuffer otherwise);
// header must not overlap payload or the tag room. Allocates nothing.
func (s *Sealer) Seal(counter uint64, header, payload []byte) ([]byte, error) {
	if cap(payload)-len(payload) < tagLen {
		return nil, ErrShortBuffer
	}
	n := s.nonces.get(counter)
	out := s.aead.Seal(payload[:0], n[:], payload, header)
	s.nonces.put(n)
	return out, nil
}

// Opener opens the datagrams of one direction under one key (one epoch)
// and filters replays. Safe for concurrent use.
type Opener struct {
	aead   cipher.AEAD
	epoch  uint32
	limit  uint64
	nonces *noncePool
	mu     sync.Mutex
	replay ReplayWindow
}

// NewOpener makes an opener for suite with a 32-byte key and epoch; it
// rejects counters from limit on (0 means RejectAfterMessages).
func NewOpener(suite Suite, key []byte, epoch uint32, limit uint64) (*Opener, error) {
	return newOpener(suite, key, epoch, limit, newNoncePool())
}

func newOpener(suite Suite, key []byte, epoch uint32, limit uint64, np *noncePool) (*Opener, error) {
	a, err := newAEAD(suite, key)
	if err != nil {
		return nil, fmt.Errorf("new opener: %w", err)
	}
	if limit == 0 {
		limit = RejectAfterMessages
	}
	return &Opener{aead: a, epoch: epoch, limit: limit, nonces: np}, nil
}

// Epoch is the key's epoch.
func (o *Opener) Epoch() uint32 { return o.epoch }

// Open authenticates and decrypts sealed (payload and tag) in place under
// counter with header as additional data, and returns the payload. A
// replayed or too old counter is rejected before any cryptography
// (ErrReplay); a failed tag gives ErrForged. The replay window only
// advances after authentication. On failure sealed may be overwritten.
// Allocates nothing.
func (o *Opener) Open(counter uint64, header, sealed []byte) ([]byte, error) {
	if len(sealed) < tagLen {
		return nil, ErrShortDatagram
	}
	if counter >= o.limit {
		return nil, ErrReplay
	}
	o.mu.Lock()
	fresh := o.replay.Check(counter)
	o.mu.Unlock()
	if !fresh {
		return nil, ErrReplay
	}
	n := o.nonces.get(counter)
	out, err := o.aead.Open(sealed[:0], n[:], sealed, header)
	o.nonces.put(n)
	if err != nil {
		return nil, ErrForged
	}
	o.mu.Lock()
	fresh = o.replay.Accept(counter)
	o.mu.Unlock()
	if !fresh { // a concurrent copy of the same datagram won the race
		return nil, ErrReplay
	}
	return out, nil
}
