package ipam

import (
	"math/rand/v2"
	"testing"
)

// TestBitset compares count, firstClear and firstSet with a naive model on
// random contents and random spans, including spans that start and end
// off a word boundary.
func TestBitset(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	pool := span{1000, 1000 + 700}
	for round := range 200 {
		b := newBitset(pool)
		model := make([]bool, pool.size())
		density := rnd.Float64()
		for i := range model {
			if rnd.Float64() < density {
				model[i] = true
				b.set(pool.lo + uint64(i))
			}
		}
		// Some words entirely full and entirely empty.
		for i := 64; i < 128; i++ {
			model[i] = true
			b.set(pool.lo + uint64(i))
		}
		for i := 256; i < 320; i++ {
			model[i] = false
			b.clear(pool.lo + uint64(i))
		}
		for range 50 {
			lo := pool.lo + uint64(rnd.IntN(int(pool.size())+1))
			hi := lo + uint64(rnd.IntN(int(pool.hi-lo)+1))
			s := span{lo, hi}
			var n uint64
			fc, fs := uint64(0), uint64(0)
			hasC, hasS := false, false
			for a := lo; a < hi; a++ {
				if model[a-pool.lo] {
					n++
					if !hasS {
						fs, hasS = a, true
					}
				} else if !hasC {
					fc, hasC = a, true
				}
			}
			if got := b.count(s); got != n {
				t.Fatalf("round %d: count(%d-%d) = %d, want %d", round, lo, hi, got, n)
			}
			if got, ok := b.firstClear(s); ok != hasC || got != fc {
				t.Fatalf("round %d: firstClear(%d-%d) = %d %v, want %d %v", round, lo, hi, got, ok, fc, hasC)
			}
			if got, ok := b.firstSet(s); ok != hasS || got != fs {
				t.Fatalf("round %d: firstSet(%d-%d) = %d %v, want %d %v", round, lo, hi, got, ok, fs, hasS)
			}
		}
		for i, v := range model {
			if b.get(pool.lo+uint64(i)) != v {
				t.Fatalf("round %d: get(%d) wrong", round, i)
			}
		}
	}
}
