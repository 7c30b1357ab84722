package secure

import (
	"fmt"
	"testing"
	"time"
)

var benchSizes = []int{64, 1400, 64 << 10}

// BenchmarkSeal measures sealing one datagram in place (counter
// reservation included), per suite and payload size.
func BenchmarkSeal(b *testing.B) {
	for _, s := range suites {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%v/%d", s, n), func(b *testing.B) {
				sl, _ := testPair(b, s, 1<<62)
				buf := make([]byte, 20+n+TagLen)
				hdr, body := buf[:20], buf[20:20+n]
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					c, err := sl.Next()
					if err != nil {
						b.Fatal(err)
					}
					if _, err := sl.Seal(c, hdr, body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkOpen measures opening one datagram in place, replay window
// included. Every iteration opens a fresh counter of the same ciphertext
// re-sealed beforehand, so the work is a full authenticated decryption.
func BenchmarkOpen(b *testing.B) {
	for _, s := range suites {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%v/%d", s, n), func(b *testing.B) {
				sl, op := testPair(b, s, 1<<62)
				const batch = 64
				bufs := make([][]byte, batch)
				for i := range bufs {
					bufs[i] = make([]byte, 20+n+TagLen)
				}
				work := make([]byte, n+TagLen)
				var base uint64
				b.SetBytes(int64(n))
				b.ReportAllocs()
				i := batch
				for b.Loop() {
					if i == batch { // reseal a batch outside the timer
						b.StopTimer()
						for j := range bufs {
							c, _ := sl.Next()
							if j == 0 {
								base = c
							}
							sl.Seal(c, bufs[j][:20], bufs[j][20:20+n])
						}
						i = 0
						b.StartTimer()
					}
					copy(work, bufs[i][20:])
					if _, err := op.Open(base+uint64(i), bufs[i][:20], work); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkKeyRing measures the router's whole per-datagram path:
// Reserve, Seal, then Open on the peer's ring, at 1400 bytes.
func BenchmarkKeyRing(b *testing.B) {
	for _, s := range suites {
		b.Run(s.String(), func(b *testing.B) {
			now := time.Unix(1000, 0)
			x, y, err := NewLinkedKeyRings(s, RekeyPolicy{}, now)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 20+1400+TagLen)
			hdr, body := buf[:20], buf[20:1420]
			b.SetBytes(1400)
			b.ReportAllocs()
			for b.Loop() {
				sl, c, err := x.Reserve(now)
				if err != nil {
					b.Fatal(err)
				}
				sealed, _ := sl.Seal(c, hdr, body)
				if _, err := y.Open(sl.KeyID(), c, hdr, sealed, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandshake measures one full handshake (both sides, three
// messages), without the Argon2id stretch, which happens once per router.
func BenchmarkHandshake(b *testing.B) {
	ic, rc := cfgPair("bench", "bench")
	b.ReportAllocs()
	for b.Loop() {
		ih, _ := NewInitiator(ic)
		rh, _ := NewResponder(rc)
		m1, _ := ih.Step(nil)
		m2, _ := rh.Step(m1)
		m3, _ := ih.Step(m2)
		if _, err := rh.Step(m3); err != nil {
			b.Fatal(err)
		}
	}
}
