package router

import (
	"context"
	"time"
)

// timer is the state of the timer goroutine.
type timer struct {
	r          *Router
	out        sender
	ticked     []*conn
	nextExpire int64
}

// runTimer runs the timer goroutine until ctx is done: on each tick (or
// when a reader or the mesh wakes it) it advances every connection's
// timers and expires old MACs.
func (r *Router) runTimer(ctx context.Context) {
	ticks := r.cfg.Ticks
	if ticks == nil {
		t := time.NewTicker(r.cfg.TickInterval)
		defer t.Stop()
		ticks = t.C
	}
	t := &timer{r: r, out: newSender(r, r.timerStats, 0)}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		case <-r.kick:
		}
		t.tick(r.cfg.Now().UnixNano())
	}
}

// tick advances all timers to now (unix nanoseconds).
func (t *timer) tick(now int64) {
	t.ticked = t.ticked[:0]
	for _, c := range *t.r.conns.Load() {
		c.tick(now, &t.out)
		t.ticked = append(t.ticked, c)
	}
	t.r.pings.send(t.r, now, &t.out)
	t.out.flush()
	for _, idx := range t.out.failed {
		for _, c := range t.ticked {
			if c.pm.sentIdx == idx {
				c.probeRejected(now)
			}
		}
	}
	clear(t.ticked)
	if now >= t.nextExpire {
		if n := t.r.macs.expire(now); n > 0 {
			t.r.log.Debug("expired MACs", "count", n)
		}
		t.nextExpire = now + int64(t.r.cfg.MACMaxAge/10)
	}
}
