package ipam

import "math/bits"

// bitset marks the addresses of a pool held on this router: one bit per
// address, 2 MiB for the largest pool (/8), made only for pools this
// router allocates in.
type bitset struct {
	lo uint64
	w  []uint64
}

func newBitset(s span) *bitset { return &bitset{lo: s.lo, w: make([]uint64, (s.size()+63)/64)} }

func (b *bitset) get(a uint64) bool { o := a - b.lo; return b.w[o/64]&(1<<(o%64)) != 0 }
func (b *bitset) set(a uint64)      { o := a - b.lo; b.w[o/64] |= 1 << (o % 64) }
func (b *bitset) clear(a uint64)    { o := a - b.lo; b.w[o/64] &^= 1 << (o % 64) }

// count returns how many addresses of s are set.
func (b *bitset) count(s span) uint64 {
	var n uint64
	for a := s.lo; a < s.hi; {
		o := a - b.lo
		if o%64 == 0 && a+64 <= s.hi {
			n += uint64(bits.OnesCount64(b.w[o/64]))
			a += 64
			continue
		}
		if b.get(a) {
			n++
		}
		a++
	}
	return n
}

// firstClear returns the lowest address of s that is not set.
func (b *bitset) firstClear(s span) (uint64, bool) {
	for a := s.lo; a < s.hi; {
		o := a - b.lo
		if o%64 == 0 && a+64 <= s.hi {
			if w := b.w[o/64]; w != ^uint64(0) {
				return a + uint64(bits.TrailingZeros64(^w)), true
			}
			a += 64
			continue
		}
		if !b.get(a) {
			return a, true
		}
		a++
	}
	return 0, false
}

// firstSet returns the lowest address of s that is set.
func (b *bitset) firstSet(s span) (uint64, bool) {
	for a := s.lo; a < s.hi; {
		o := a - b.lo
		if o%64 == 0 && a+64 <= s.hi {
			if w := b.w[o/64]; w != 0 {
				return a + uint64(bits.TrailingZeros64(w)), true
			}
			a += 64
			continue
		}
		if b.get(a) {
			return a, true
		}
		a++
	}
	return 0, false
}
