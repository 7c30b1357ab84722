// Package meshtest runs many mesh nodes in one process: an in-memory
// network with latency, loss, partitions and broken links (Network), a
// virtual clock whose timers fire in a deterministic order (Clock), and a
// harness that starts, connects, stops and restarts nodes with fake
// overlays (Harness).
//
// The clock only moves when told to (Clock.Advance). Between two timer
// firings it lets every goroutine of the nodes finish what it can do at
// the current instant by calling its settle function; the harness uses
// testing/synctest's Wait, so a Harness must be created inside
// synctest.Test. Nothing sleeps in real time.
package meshtest

import (
	"container/heap"
	"sync"
	"time"

	"github.com/weftnet/weft/mesh"
)

// Clock is a virtual mesh.Clock. Its time starts at a fixed instant and
// moves only in Advance, which fires the timers that fall due in order of
// their time, then of their creation.
type Clock struct {
	settle func()

	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers timerHeap
}

// Epoch is the time a new Clock starts at.
var Epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// NewClock returns a clock at Epoch. settle is called before each timer
// fires and at the end of Advance, to let the goroutines driven by the
// clock run until they block; nil means no settling (for use from a
// single goroutine).
func NewClock(settle func()) *Clock {
	if settle == nil {
		settle = func() {}
	}
	return &Clock{settle: settle, now: Epoch}
}

// Now returns the virtual time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Since returns the virtual time elapsed since t.
func (c *Clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// NewTimer returns a timer firing after d of virtual time.
func (c *Clock) NewTimer(d time.Duration) mesh.Timer {
	t := &vtimer{c: c, ch: make(chan time.Time, 1), idx: -1}
	t.Reset(d)
	return t
}

// NewTicker returns a ticker firing every d of virtual time.
func (c *Clock) NewTicker(d time.Duration) mesh.Ticker {
	if d <= 0 {
		panic("meshtest: non-positive ticker period")
	}
	t := &vtimer{c: c, ch: make(chan time.Time, 1), idx: -1, period: d}
	t.Reset(d)
	return vticker{t}
}

// vticker is a periodic vtimer as a mesh.Ticker.
type vticker struct{ t *vtimer }

func (t vticker) C() <-chan time.Time { return t.t.ch }
func (t vticker) Stop()               { t.t.Stop() }

// AfterFunc calls f on the goroutine that advances the clock once d of
// virtual time has passed. Stopping the returned timer cancels the call.
func (c *Clock) AfterFunc(d time.Duration, f func()) mesh.Timer {
	t := &vtimer{c: c, fn: f, idx: -1}
	t.Reset(d)
	return t
}

// Next returns when the earliest pending timer fires; ok is false when
// none is pending.
func (c *Clock) Next() (at time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].when, true
}

// Advance moves the clock forward by d, firing every timer that falls due
// on the way at its own time, settling before each one and at the end.
func (c *Clock) Advance(d time.Duration) {
	c.AdvanceTo(c.Now().Add(d))
}

// AdvanceTo moves the clock forward to t as Advance does; a t in the
// past only settles.
func (c *Clock) AdvanceTo(t time.Time) {
	for {
		c.settle()
		if !c.fireInstant(t) {
			break
		}
	}
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
	c.settle()
}

// Step settles, then fires the earliest pending timer (with every other
// due at the same instant) and settles again; it reports false when no
// timer was pending, or none before limit.
func (c *Clock) Step(limit time.Time) bool {
	c.settle()
	at, ok := c.Next()
	if !ok || at.After(limit) {
		return false
	}
	c.AdvanceTo(at)
	return true
}

// fireInstant fires, in order, every timer due at the instant of the
// earliest one, if that is at or before limit: the goroutines they wake
// run together, as they would at one instant of real time.
func (c *Clock) fireInstant(limit time.Time) bool {
	c.mu.Lock()
	if len(c.timers) == 0 || c.timers[0].when.After(limit) {
		c.mu.Unlock()
		return false
	}
	at := c.timers[0].when
	c.mu.Unlock()
	for c.fireOne(at) {
	}
	return true
}

// fireOne fires the earliest timer due at or before limit.
func (c *Clock) fireOne(limit time.Time) bool {
	c.mu.Lock()
	if len(c.timers) == 0 || c.timers[0].when.After(limit) {
		c.mu.Unlock()
		return false
	}
	t := heap.Pop(&c.timers).(*vtimer)
	if t.when.After(c.now) {
		c.now = t.when
	}
	now := c.now
	if t.period > 0 {
		t.when = t.when.Add(t.period)
		c.seq++
		t.seq = c.seq
		heap.Push(&c.timers, t)
	}
	c.mu.Unlock()
	if t.fn != nil {
		t.fn()
		return true
	}
	select {
	case t.ch <- now:
	default: // a slow receiver misses a tick, as with time.Ticker
	}
	return true
}

// vtimer is a timer, ticker or AfterFunc of a Clock.
type vtimer struct {
	c      *Clock
	ch     chan time.Time
	fn     func()
	period time.Duration
	when   time.Time
	seq    uint64
	idx    int // in the heap; -1 when not pending
}

func (t *vtimer) C() <-chan time.Time { return t.ch }

func (t *vtimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.stopLocked()
}

func (t *vtimer) stopLocked() bool {
	if t.ch != nil {
		select { // no stale value after Stop, as with Go 1.23 timers
		case <-t.ch:
		default:
		}
	}
	if t.idx < 0 {
		return false
	}
	heap.Remove(&t.c.timers, t.idx)
	return true
}

func (t *vtimer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	was := t.stopLocked()
	t.when = c.now.Add(max(d, 0))
	c.seq++
	t.seq = c.seq
	heap.Push(&c.timers, t)
	return was
}

// timerHeap orders timers by time, then creation (or last reset).
type timerHeap []*vtimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*vtimer)
	t.idx = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.idx = -1
	*h = old[:len(old)-1]
	return t
}

var _ mesh.Clock = (*Clock)(nil)
