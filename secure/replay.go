package secure

import "math"

// Replay window geometry: a ring of 64-bit blocks. One block is kept free
// so that advancing never clears a bit that is still inside the window.
const (
	replayBlockBits = 64
	replayBlocks    = 128
	// ReplayWindowSize is how far (in counters) behind the highest counter
	// seen a datagram may arrive and still be accepted once: 8128.
	ReplayWindowSize = (replayBlocks - 1) * replayBlockBits
)

// ReplayWindow is a sliding-window replay filter over 64-bit counters. It
// accepts each counter at most once, accepts counters up to
// ReplayWindowSize-1 behind the highest one accepted (reordering), and
// rejects older ones; the counter math.MaxUint64 is never accepted. The zero value is empty and ready. Not safe for
// concurrent use: the owner locks.
type ReplayWindow struct {
	next   uint64 // highest counter accepted + 1; 0 when none yet
	blocks [replayBlocks]uint64
}

// Check reports whether counter c would be accepted, without recording it.
// Use it to drop a datagram before spending time on its authentication.
func (w *ReplayWindow) Check(c uint64) bool {
	if c == math.MaxUint64 { // reserved: never sealed, would wrap next
		return false
	}
	if c >= w.next {
		return true
	}
	if w.next-c > ReplayWindowSize {
		return false
	}
	return w.blocks[(c/replayBlockBits)%replayBlocks]&(1<<(c%replayBlockBits)) == 0
}

// Accept records counter c and reports whether it was new and inside the
// window. Call it only after the datagram authenticated.
func (w *ReplayWindow) Accept(c uint64) bool {
	if !w.Check(c) {
		return false
	}
	if c >= w.next {
		newTop := c / replayBlockBits
		var n uint64 = replayBlocks
		if w.next > 0 {
			oldTop := (w.next - 1) / replayBlockBits
			n = min(newTop-oldTop, replayBlocks)
		}
		for i := uint64(0); i < n; i++ {
			w.blocks[(newTop-i)%replayBlocks] = 0
		}
		w.next = c + 1
	}
	w.blocks[(c/replayBlockBits)%replayBlocks] |= 1 << (c % replayBlockBits)
	return true
}

// Reset forgets every counter.
func (w *ReplayWindow) Reset() { *w = ReplayWindow{} }
