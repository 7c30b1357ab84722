package secure

import (
	"math"
	"testing"
)

func TestReplayWindow(t *testing.T) {
	const W = ReplayWindowSize
	type step struct {
		c    uint64
		want bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first counter zero", []step{{0, true}, {0, false}}},
		{"in order", []step{{0, true}, {1, true}, {2, true}, {1, false}}},
		{"reorder inside window", []step{{10, true}, {5, true}, {7, true}, {5, false}, {10, false}, {9, true}}},
		{"oldest inside window", []step{{W + 100, true}, {101, true}, {101, false}}},
		{"just outside window", []step{{W + 100, true}, {100, false}}},
		{"far jump clears ring", []step{{5, true}, {5 + 10*W, true}, {5 + 10*W - 1, true}, {5 + 9*W, false}}},
		{"jump by exactly window", []step{{0, true}, {W, true}, {1, true}, {0, false}}},
		{"block boundaries", []step{{63, true}, {64, true}, {127, true}, {128, true}, {64, false}, {65, true}}},
		{"max counter refused", []step{{math.MaxUint64, false}, {math.MaxUint64 - 1, true}, {math.MaxUint64 - 1, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w ReplayWindow
			for i, s := range tt.steps {
				check := w.Check(s.c)
				if got := w.Accept(s.c); got != s.want || check != s.want {
					t.Fatalf("step %d: counter %d: Check %v Accept %v, want %v", i, s.c, check, got, s.want)
				}
			}
		})
	}
}

// TestReplayWindowEdges walks the window's lower edge at every offset
// within a block, so that the ring's free block is exercised.
func TestReplayWindowEdges(t *testing.T) {
	const W = ReplayWindowSize
	for top := uint64(W); top < W+2*replayBlockBits; top++ {
		var w ReplayWindow
		if !w.Accept(top) {
			t.Fatalf("top %d refused", top)
		}
		lowest := top - W + 1 // oldest counter still inside the window
		if !w.Check(lowest) || !w.Accept(lowest) {
			t.Fatalf("top %d: lowest in-window %d refused", top, lowest)
		}
		if w.Accept(lowest) {
			t.Fatalf("top %d: %d accepted twice", top, lowest)
		}
		if w.Check(lowest - 1) {
			t.Fatalf("top %d: %d outside window accepted", top, lowest-1)
		}
		// Every counter in between is still fresh exactly once.
		for c := lowest + 1; c < top; c++ {
			if !w.Accept(c) {
				t.Fatalf("top %d: %d refused", top, c)
			}
		}
		for c := lowest; c <= top; c++ {
			if w.Check(c) {
				t.Fatalf("top %d: %d fresh after acceptance", top, c)
			}
		}
	}
}

// TestReplayWindowSliding slides forward in steps of every size and
// checks against a map model.
func TestReplayWindowSliding(t *testing.T) {
	var w ReplayWindow
	seen := map[uint64]bool{}
	var top uint64
	for i, c := uint64(0), uint64(0); i < 20000; i++ {
		c += i%97 + 1
		cands := []uint64{c}
		if c > 300 {
			cands = append(cands, c-300, c-(i*31)%(ReplayWindowSize+50))
		}
		for _, x := range cands {
			want := !seen[x] && (x > top || top-x < ReplayWindowSize || len(seen) == 0)
			if got := w.Accept(x); got != want {
				t.Fatalf("step %d: counter %d (top %d): got %v want %v", i, x, top, got, want)
			}
			if want {
				seen[x] = true
				top = max(top, x)
			}
		}
	}
}

func TestReplayWindowReset(t *testing.T) {
	var w ReplayWindow
	w.Accept(5)
	w.Reset()
	if !w.Accept(5) {
		t.Fatal("counter refused after Reset")
	}
}
