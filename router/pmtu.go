package router

import "fmt"

// pmtuSearch is the path MTU search of one connection, owned by the timer
// goroutine. It binary-searches the largest MTU in [MinMTU, the device
// MTU] whose probe datagram (MTU+FrameOverhead bytes, sent with DF) the
// peer acknowledges, starting with the device MTU itself.
type pmtuSearch struct {
	active   bool
	lo, hi   int    // lo: largest verified MTU (MinMTU-1: none yet); hi: largest not yet refuted
	cand     int    // MTU being probed
	id       uint32 // id of the outstanding probe
	lastID   uint32
	attempts int   // probes sent for cand
	deadline int64 // when the outstanding probe times out
	next     int64 // when the next search starts
	sentIdx  int   // index of this tick's probe in the timer sender's batch, or -1
}

// probeTick advances the search. Timer goroutine only.
func (c *conn) probeTick(now int64, s *sender) {
	pm := &c.pm
	if !pm.active {
		if now < pm.next {
			return
		}
		pm.active = true
		pm.lo, pm.hi = MinMTU-1, c.r.maxMTU
		pm.cand, pm.attempts = pm.hi, 0
		c.sendProbe(now, s)
		return
	}
	switch {
	case c.probeAck.Load() == pm.id:
		pm.lo = pm.cand
		c.advance(now, s)
	case now >= pm.deadline:
		if pm.attempts >= c.r.cfg.ProbeAttempts {
			pm.hi = pm.cand - 1
			c.advance(now, s)
		} else {
			c.sendProbe(now, s)
		}
	}
}

// probeRejected handles a probe the transport refused to send (for
// instance EMSGSIZE): the size counts as too big at the next tick.
func (c *conn) probeRejected(now int64) {
	c.pm.attempts = c.r.cfg.ProbeAttempts
	c.pm.deadline = now
}

// advance picks the next candidate, or ends the search.
func (c *conn) advance(now int64, s *sender) {
	pm := &c.pm
	if pm.lo < pm.hi {
		pm.cand, pm.attempts = (pm.lo+pm.hi+1)/2, 0
		c.sendProbe(now, s)
		return
	}
	pm.active = false
	pm.next = now + int64(c.r.cfg.ProbeInterval)
	mtu, reason := pm.lo, ""
	if mtu < MinMTU {
		mtu, reason = MinMTU, fmt.Sprintf("path MTU probing got no answer; assuming %d", MinMTU)
	}
	if old := c.mtu.Swap(int32(mtu)); int(old) != mtu {
		c.r.log.Info("path MTU verified", "peer", c.peer, "mtu", mtu, "was", old)
	}
	c.mu.Lock()
	c.verified = reason == ""
	c.reason = reason
	c.mu.Unlock()
}

// sendProbe queues a probe for the current candidate.
func (c *conn) sendProbe(now int64, s *sender) {
	pm := &c.pm
	pm.lastID++
	if pm.lastID == 0 {
		pm.lastID = 1
	}
	pm.id = pm.lastID
	pm.attempts++
	pm.deadline = now + int64(c.r.cfg.ProbeTimeout)
	a := c.addr.Load()
	if a == nil {
		return
	}
	buf, i := s.control(c, *a)
	s.commit(i, putProbe(buf, pm.cand+FrameOverhead, c.r.self, c.counter.Add(1), c.uid, pm.id))
	pm.sentIdx = i
}
