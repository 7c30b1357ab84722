package mesh

import "time"

// backoff is the retry schedule of one target: the first retry waits
// about initial, each further failure multiplies the interval by 1.5 up to
// max, and every wait is jittered uniformly in [i/2, 3i/2).
type backoff struct {
	initial, max time.Duration
	interval     time.Duration // 0 until the first failure
}

// next records a failure and returns how long to wait before the next
// attempt. rnd returns a uniform value in [0, n).
func (b *backoff) next(rnd func(n int64) int64) time.Duration {
	switch {
	case b.interval == 0:
		b.interval = b.initial
	default:
		b.interval = b.interval * 3 / 2
	}
	if b.interval > b.max {
		b.interval = b.max
	}
	return jitter(b.interval, rnd)
}

// reset forgets earlier failures.
func (b *backoff) reset() { b.interval = 0 }

// jitter returns a duration uniform in [i/2, 3i/2).
func jitter(i time.Duration, rnd func(n int64) int64) time.Duration {
	if i <= 1 {
		return i
	}
	return i/2 + time.Duration(rnd(int64(i)))
}
