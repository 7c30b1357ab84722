package router

import (
	"math/rand"
	"testing"
	"time"
)

// runFor steps the pair for d in steps of 100 ms, calling each before
// every step.
func (s *steppedPair) runFor(d time.Duration, each func()) {
	for t := time.Duration(0); t < d; t += 100 * time.Millisecond {
		if each != nil {
			each()
		}
		s.step(100 * time.Millisecond)
	}
}

// minMTU tracks the lowest MTU the connection reports.
type minMTU struct{ low int }

func (m *minMTU) see(c *conn) {
	if v := int(c.mtu.Load()); m.low == 0 || v < m.low {
		m.low = v
	}
}

// TestPMTULossIsNoEvidence: half of all probes and acks lost at random, or
// acks held back past the timeout in bursts, never lower the MTU below the
// link's real one: a size counts as too big only when it is lost while a
// smaller probe sent with it comes back.
func TestPMTULossIsNoEvidence(t *testing.T) {
	const link = 1200
	want := link - FrameOverhead
	for _, tc := range []struct {
		name string
		set  func(s *steppedPair, step int)
	}{
		{"half of the probes lost", func(s *steppedPair, _ int) {}},
		{"acks late in bursts", func(s *steppedPair, step int) {
			burst := step%15 < 10 // 1 s of acks held back, then 0.5 s of flow
			if !burst && s.pba.hold {
				s.pba.release()
			}
			s.pba.hold = burst
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSteppedPair(t)
			s.pab.limit, s.pba.limit = link, link
			if tc.name == "half of the probes lost" {
				s.pab.lossy, s.pab.rnd = 0.5, rand.New(rand.NewSource(1))
				s.pba.lossy, s.pba.rnd = 0.5, rand.New(rand.NewSource(2))
			}
			var low minMTU
			step := 0
			// Long enough for the first search and several searches and
			// confirmations after it (raise interval 1 min).
			s.runFor(10*time.Minute, func() {
				tc.set(s, step)
				step++
				if s.ab.pm.verified {
					low.see(s.ab)
				}
			})
			if got := int(s.ab.mtu.Load()); got != want {
				t.Fatalf("MTU %d after 10 min, want the link's %d", got, want)
			}
			if low.low != want {
				t.Fatalf("the MTU went down to %d on the way, want it to stay at %d", low.low, want)
			}
		})
	}
}

// TestPMTUFollowsThePath: a path that really shrinks is followed down
// within seconds (the verified size stops coming back while smaller probes
// do), and back up after it grows again (the raise interval).
func TestPMTUFollowsThePath(t *testing.T) {
	s := newSteppedPair(t)
	s.pab.limit, s.pba.limit = 1400, 1400
	s.runFor(30*time.Second, nil)
	if got, want := int(s.ab.mtu.Load()), 1400-FrameOverhead; got != want {
		t.Fatalf("MTU %d, want %d", got, want)
	}
	s.pab.limit, s.pba.limit = 900, 900
	down := time.Duration(0)
	for ; down < time.Minute && int(s.ab.mtu.Load()) != 900-FrameOverhead; down += 100 * time.Millisecond {
		s.step(100 * time.Millisecond)
	}
	if got := int(s.ab.mtu.Load()); got != 900-FrameOverhead {
		t.Fatalf("a minute after the path shrank to 900 the MTU is %d", got)
	}
	if down > 30*time.Second {
		t.Errorf("followed the path down after %s, want within 30 s", down)
	}
	s.pab.limit, s.pba.limit = 1400, 1400
	up := time.Duration(0)
	for ; up < 3*time.Minute && int(s.ab.mtu.Load()) != 1400-FrameOverhead; up += 100 * time.Millisecond {
		s.step(100 * time.Millisecond)
	}
	if got := int(s.ab.mtu.Load()); got != 1400-FrameOverhead {
		t.Fatalf("3 minutes after the path grew back the MTU is %d", got)
	}
	if up > 90*time.Second {
		t.Errorf("climbed back after %s, want within the raise interval and a search", up)
	}
}

// TestPMTUFloorWithoutICMP: with probes above the floor all lost but the
// floor's coming back, the search ends at the floor; it goes below only on
// ICMP evidence (the socket refusing a size), never on loss.
func TestPMTUFloorWithoutICMP(t *testing.T) {
	s := newSteppedPair(t)
	s.pab.limit = MinMTU + FrameOverhead // exactly the floor passes
	s.runFor(time.Minute, nil)
	if got := int(s.ab.mtu.Load()); got != MinMTU {
		t.Fatalf("MTU %d, want the floor %d", got, MinMTU)
	}
	if st := s.ab.Status(); st.Reason != "" {
		t.Fatalf("the floor was verified, yet status says %q", st.Reason)
	}
}
