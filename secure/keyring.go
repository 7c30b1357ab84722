package secure

import (
	"crypto/rand"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Rekey defaults.
const (
	// DefaultRekeyAfter is how long one data key seals before the next
	// epoch starts.
	DefaultRekeyAfter = 2 * time.Minute
	// DefaultRekeyAfterMessages is how many datagrams one data key seals
	// before the next epoch starts. With datagrams of at most 64 KiB this
	// keeps AES-GCM far inside its usage bounds (2^36 blocks per key).
	DefaultRekeyAfterMessages uint64 = 1 << 24
	// DefaultGrace is how long the previous receiving key still opens
	// datagrams after the peer moved to a new epoch.
	DefaultGrace = 10 * time.Second
)

// RekeyPolicy says when the sending side of a KeyRing starts a new epoch
// and how long the receiving side keeps the previous key. Zero fields take
// the defaults.
type RekeyPolicy struct {
	// After is the lifetime of a sending key.
	After time.Duration
	// AfterMessages is the number of datagrams a sending key seals.
	AfterMessages uint64
	// Grace is how long the previous receiving key stays usable.
	Grace time.Duration
}

func (p RekeyPolicy) withDefaults() RekeyPolicy {
	if p.After <= 0 {
		p.After = DefaultRekeyAfter
	}
	if p.AfterMessages == 0 || p.AfterMessages > RejectAfterMessages {
		p.AfterMessages = DefaultRekeyAfterMessages
	}
	if p.Grace <= 0 {
		p.Grace = DefaultGrace
	}
	return p
}

// KeyRing holds the data keys of one connection: the current sending key,
// and the current and next receiving keys with up to maxPrevKeys earlier
// ones. Epoch n+1's key
// material comes from epoch n's by an HKDF ratchet, separately per
// direction, so rekeying needs no message: the sender moves on when its
// key is old or used up, and the receiver follows when a datagram under
// the next epoch authenticates. Safe for concurrent use; the per-datagram
// calls (Reserve, Sealer.Seal, Open) take no lock except the replay
// window's and allocate nothing.
type KeyRing struct {
	suite  Suite
	policy RekeyPolicy
	nonces *noncePool

	send atomic.Pointer[sendKey]
	recv atomic.Pointer[recvKeys]

	mu        sync.Mutex // serialises ratchet steps; guards the chains
	sendChain [32]byte   // chain secret of the current sending epoch
	recvChain [32]byte   // chain secret of the next receiving epoch
}

// sendKey is the current sealer and when it expires.
type sendKey struct {
	*Sealer
	expires time.Time
}

// maxPrevKeys is how many earlier receiving keys stay usable, each for
// RekeyPolicy.Grace after the peer moved past it. One is enough at the
// default policy; under a policy that rekeys every few dozen datagrams, a
// datagram the peer sealed before two rekeys (a heartbeat or probe sealed
// by its timer goroutine while its sender sealed a hundred frames) still
// arrives, and must open.
const maxPrevKeys = 3

// recvKeys is an immutable snapshot of the receiving keys.
type recvKeys struct {
	cur, next *Opener
	prev      [maxPrevKeys]prevKey // newest first; empty ones have no opener
}

// prevKey is an earlier receiving key and until when it opens.
type prevKey struct {
	o     *Opener
	until time.Time
}

// newKeyRing starts both directions at epoch 0 from their chain secrets.
func newKeyRing(suite Suite, send, recv [32]byte, p RekeyPolicy, now time.Time) (*KeyRing, error) {
	r := &KeyRing{suite: suite, policy: p.withDefaults(), nonces: newNoncePool(), sendChain: send}
	s, err := r.sealerFor(0, &r.sendChain, now)
	if err != nil {
		return nil, err
	}
	r.send.Store(s)
	cur, err := r.openerFor(0, &recv)
	if err != nil {
		return nil, err
	}
	if err := ratchet(&recv, 1); err != nil {
		return nil, err
	}
	r.recvChain = recv
	clear(recv[:])
	next, err := r.openerFor(1, &r.recvChain)
	if err != nil {
		return nil, err
	}
	r.recv.Store(&recvKeys{cur: cur, next: next})
	return r, nil
}

// NewLinkedKeyRings returns two key rings wired to each other (what a seals
// b opens and the reverse) under fresh random secrets, as two ends of a
// handshake would get. For tests of the data plane that skip the handshake.
func NewLinkedKeyRings(suite Suite, p RekeyPolicy, now time.Time) (a, b *KeyRing, err error) {
	var x, y [32]byte
	if _, err := rand.Read(x[:]); err != nil {
		return nil, nil, err
	}
	if _, err := rand.Read(y[:]); err != nil {
		return nil, nil, err
	}
	if a, err = newKeyRing(suite, x, y, p, now); err != nil {
		return nil, nil, err
	}
	if b, err = newKeyRing(suite, y, x, p, now); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// dataKey derives the AEAD key of an epoch from its chain secret.
func dataKey(chain *[32]byte, epoch uint32) ([32]byte, error) {
	var k [32]byte
	err := expand(k[:], chain[:], epochInfo(labelDataKey, epoch))
	return k, err
}

// ratchet replaces chain (epoch next-1's) by epoch next's chain secret.
func ratchet(chain *[32]byte, next uint32) error {
	return expand(chain[:], chain[:], epochInfo(labelDataChain, next))
}

func (r *KeyRing) sealerFor(epoch uint32, chain *[32]byte, now time.Time) (*sendKey, error) {
	k, err := dataKey(chain, epoch)
	if err != nil {
		return nil, err
	}
	defer clear(k[:])
	s, err := newSealer(r.suite, k[:], epoch, 0, r.nonces)
	if err != nil {
		return nil, err
	}
	return &sendKey{Sealer: s, expires: now.Add(r.policy.After)}, nil
}

func (r *KeyRing) openerFor(epoch uint32, chain *[32]byte) (*Opener, error) {
	k, err := dataKey(chain, epoch)
	if err != nil {
		return nil, err
	}
	defer clear(k[:])
	return newOpener(r.suite, k[:], epoch, 0, r.nonces)
}

// Suite is the AEAD the ring's keys use.
func (r *KeyRing) Suite() Suite { return r.suite }

// Reserve returns the current sealer and a fresh counter under it, first
// moving to the next epoch when the current key is too old or used up.
// The caller writes sealer.KeyID() and the counter into the datagram
// header, then calls sealer.Seal with them. now comes from the caller's
// clock (one reading per batch is enough).
func (r *KeyRing) Reserve(now time.Time) (*Sealer, uint64, error) {
	for range 3 {
		s := r.send.Load()
		if now.Before(s.expires) {
			c, err := s.Next()
			if err == nil {
				if c+1 >= r.policy.AfterMessages {
					if err := r.rotate(s, now); err != nil {
						return nil, 0, err
					}
				}
				return s.Sealer, c, nil
			}
		}
		if err := r.rotate(s, now); err != nil {
			return nil, 0, err
		}
	}
	return nil, 0, ErrRekeyRequired
}

// rotate moves the sending side from old to the next epoch, unless
// another goroutine already did.
func (r *KeyRing) rotate(old *sendKey, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.send.Load() != old {
		return nil
	}
	if old.epoch == math.MaxUint32 {
		return fmt.Errorf("rekey: epochs exhausted: %w", ErrRekeyRequired)
	}
	next := old.epoch + 1
	if err := ratchet(&r.sendChain, next); err != nil {
		return fmt.Errorf("rekey: %w", err)
	}
	s, err := r.sealerFor(next, &r.sendChain, now)
	if err != nil {
		return fmt.Errorf("rekey: %w", err)
	}
	r.send.Store(s)
	return nil
}

// Open finds the receiving key by the datagram's key id (the low byte of
// the sender's epoch), then authenticates and decrypts sealed in place
// (see Opener.Open) and returns the payload. The first datagram that
// authenticates under the next epoch's key moves the ring forward; the
// previous key then opens late datagrams for RekeyPolicy.Grace more.
// Errors: ErrUnknownKey, ErrExpiredKey, ErrReplay, ErrForged,
// ErrShortDatagram. Allocates nothing.
func (r *KeyRing) Open(keyID uint8, counter uint64, header, sealed []byte, now time.Time) ([]byte, error) {
	rk := r.recv.Load()
	var o *Opener
	switch {
	case keyID == uint8(rk.cur.epoch):
		o = rk.cur
	case keyID == uint8(rk.next.epoch):
		o = rk.next
	default:
		for i := range rk.prev {
			if p := &rk.prev[i]; p.o != nil && keyID == uint8(p.o.epoch) {
				if !now.Before(p.until) {
					return nil, ErrExpiredKey
				}
				o = p.o
				break
			}
		}
		if o == nil {
			return nil, ErrUnknownKey
		}
	}
	out, err := o.Open(counter, header, sealed)
	if err != nil {
		return nil, err
	}
	if o == rk.next {
		if err := r.advance(rk, now); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// advance moves the receiving side one epoch forward from snapshot rk,
// unless another goroutine already did.
func (r *KeyRing) advance(rk *recvKeys, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recv.Load() != rk {
		return nil
	}
	if rk.next.epoch == math.MaxUint32 {
		return fmt.Errorf("follow rekey: epochs exhausted: %w", ErrRekeyRequired)
	}
	e := rk.next.epoch + 1
	if err := ratchet(&r.recvChain, e); err != nil {
		return fmt.Errorf("follow rekey: %w", err)
	}
	next, err := r.openerFor(e, &r.recvChain)
	if err != nil {
		return fmt.Errorf("follow rekey: %w", err)
	}
	nk := &recvKeys{cur: rk.next, next: next}
	nk.prev[0] = prevKey{o: rk.cur, until: now.Add(r.policy.Grace)}
	copy(nk.prev[1:], rk.prev[:maxPrevKeys-1])
	r.recv.Store(nk)
	return nil
}

// Tick does the time-driven work without a datagram: it starts a new
// sending epoch when the current key expired and forgets earlier
// receiving keys after their grace period. Call it from a timer the router
// already has (heartbeats); it is cheap when there is nothing to do.
func (r *KeyRing) Tick(now time.Time) error {
	if s := r.send.Load(); !now.Before(s.expires) {
		if err := r.rotate(s, now); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rk := r.recv.Load()
	nk := &recvKeys{cur: rk.cur, next: rk.next}
	kept, changed := 0, false
	for _, p := range rk.prev {
		switch {
		case p.o == nil:
		case now.Before(p.until):
			nk.prev[kept] = p
			kept++
		default:
			changed = true
		}
	}
	if changed {
		r.recv.Store(nk)
	}
	return nil
}

// KeyRingStatus describes a KeyRing for status output.
type KeyRingStatus struct {
	// Suite is the AEAD in use.
	Suite Suite
	// SendEpoch and RecvEpoch are the current epochs of each direction.
	SendEpoch, RecvEpoch uint32
	// SendUsed is how many datagrams the current sending key sealed.
	SendUsed uint64
}

// Status reports the ring's epochs.
func (r *KeyRing) Status() KeyRingStatus {
	s := r.send.Load()
	return KeyRingStatus{Suite: r.suite, SendEpoch: s.epoch, RecvEpoch: r.recv.Load().cur.epoch, SendUsed: s.Used()}
}
