package router

import (
	"fmt"
	"strings"
)

// Path MTU discovery in the manner of RFC 8899 (datagram packetization
// layer PMTU discovery), owned by the timer goroutine of each connection.
//
// Every attempt at a candidate size sends candidateCopies probes of it
// together with a control probe of a size known to pass (the largest
// verified in this search, or the floor). A candidate counts as too big
// only after 2*ProbeAttempts attempts in which every copy was lost while
// the control came back, and none in which a copy came back: loss that
// hits both (a busy machine, a lossy link, acks delayed in a burst) is no
// evidence and lowers nothing. With half of all probes lost at random, a
// size that fits is judged too big with a probability below 1e-7. A size the socket refuses to send (EMSGSIZE: the
// kernel learned a smaller path MTU from an ICMP "fragmentation needed",
// or the interface is smaller) is evidence at once. Without such evidence
// the MTU never goes below the floor: MinMTU for IPv4 underlays, 1280 less
// the headers for IPv6 ones.
//
// Between searches the verified MTU is confirmed every
// ProbeConfirmInterval (with a control of the floor size): ProbeAttempts
// confirmations in a row lost while their controls came back start a new
// search, so a path that shrank is followed within seconds. A verified
// MTU below the largest is searched again every ProbeRaiseInterval, so a
// wrong decision heals by itself, and any larger probe that comes back
// raises the MTU at once.

// candidateCopies is how many probes of the candidate size each attempt
// sends (one id: any of them coming back verifies the size).
const candidateCopies = 3

// pmtuSearch is the path MTU state of one connection. Timer goroutine only.
type pmtuSearch struct {
	active     bool
	lo, hi     int // lo: largest size verified in this search (below the floor: none); hi: largest not refuted
	cand, ctl  int // sizes of the outstanding candidate and control probes (ctl 0: none)
	candID     uint32
	ctlID      uint32
	lastID     uint32
	strikes    int // attempts at cand lost while the control came back
	lost       int // attempts in a row in which both were lost
	evidence   bool
	deadline   int64 // when the outstanding probes time out
	next       int64 // when the next search starts
	confirm    int64 // when the verified MTU is next confirmed (not searching)
	confirming bool
	misses     int         // confirmations in a row lost while their control came back
	failed     []sizeCount // sizes judged too big in this search, for the log
	verified   bool        // some search verified an MTU on this connection
	sentIdx    int         // index of this tick's candidate probe in the timer sender's batch, or -1
}

// sizeCount is a size and how often it was lost while a smaller probe came
// back ("icmp" when the socket refused it).
type sizeCount struct {
	size   int
	losses int
	icmp   bool
}

// floor is the MTU below which probing never goes without ICMP evidence.
func (c *conn) floor() int {
	if a := c.addr.Load(); a != nil && a.Addr().Is6() && !a.Addr().Is4In6() {
		return min(max(1280-48-FrameOverhead, MinMTU), c.r.maxMTU)
	}
	return MinMTU
}

// probeTick advances the search or the confirmation. Timer goroutine only.
func (c *conn) probeTick(now int64, s *sender) {
	pm := &c.pm
	pm.sentIdx = -1
	if !pm.active {
		if pm.confirming {
			c.confirmTick(now, s)
			return
		}
		if now >= pm.next {
			c.startSearch(now, s, pm.verified)
			return
		}
		if pm.verified && now >= pm.confirm {
			pm.confirming = true
			c.sendPair(now, s, int(c.mtu.Load()), c.floor(), 1)
		}
		return
	}
	candOK := c.probeAck.Load() == pm.candID
	ctlOK := pm.ctl > 0 && c.probeAckCtl.Load() == pm.ctlID
	switch {
	case candOK:
		pm.lo, pm.strikes, pm.lost = pm.cand, 0, 0
		if pm.cand > int(c.mtu.Load()) && pm.verified {
			c.setMTU(pm.cand, "a larger probe came back")
		}
		c.advance(now, s)
	case pm.evidence:
		pm.failed = append(pm.failed, sizeCount{size: pm.cand, icmp: true})
		c.refute(now, s, true)
	case now < pm.deadline:
	case ctlOK:
		pm.lo = max(pm.lo, pm.ctl)
		pm.strikes++
		pm.lost = 0
		if pm.strikes >= 2*c.r.cfg.ProbeAttempts {
			pm.failed = append(pm.failed, sizeCount{size: pm.cand, losses: pm.strikes})
			c.refute(now, s, false)
		} else {
			c.sendPair(now, s, pm.cand, c.controlSize(), candidateCopies)
		}
	default:
		pm.lost++
		if pm.lost >= 8*c.r.cfg.ProbeAttempts {
			c.inconclusive(now)
		} else {
			c.sendPair(now, s, pm.cand, c.controlSize(), candidateCopies)
		}
	}
}

// startSearch begins a search up to the device's MTU, from the verified
// MTU when fromVerified (it is known to pass), else from the floor.
func (c *conn) startSearch(now int64, s *sender, fromVerified bool) {
	pm := &c.pm
	pm.active, pm.strikes, pm.lost, pm.failed = true, 0, 0, pm.failed[:0]
	pm.lo, pm.hi = c.floor()-1, c.r.maxMTU
	if fromVerified {
		pm.lo = min(int(c.mtu.Load()), pm.hi)
	}
	pm.cand = pm.hi
	// The first attempt is one probe of the largest size, as that is what
	// most paths carry: it verifies it within one round trip. Copies and
	// a control come with the attempts after it.
	c.sendPair(now, s, pm.cand, 0, 1)
}

// controlSize is the size of the control probe sent with a candidate: the
// largest verified in this search, or the floor.
func (c *conn) controlSize() int {
	if c.pm.lo >= c.floor() && c.pm.lo < c.pm.cand {
		return c.pm.lo
	}
	return min(c.floor(), c.pm.cand-1)
}

// refute lowers the upper bound below the candidate and goes on. Without
// ICMP evidence it never goes below the floor.
func (c *conn) refute(now int64, s *sender, icmp bool) {
	pm := &c.pm
	pm.hi, pm.strikes, pm.lost, pm.evidence = pm.cand-1, 0, 0, false
	if !icmp {
		pm.hi = max(pm.hi, c.floor())
	}
	if pm.lo > pm.hi {
		pm.lo = pm.hi
	}
	c.advance(now, s)
}

// probeRejected handles a candidate the transport refused to send (for
// instance EMSGSIZE): evidence that the size is too big, acted on at the
// next tick.
func (c *conn) probeRejected(now int64) {
	c.pm.evidence = true
	c.pm.deadline = now
}

// advance probes the next candidate, or ends the search.
func (c *conn) advance(now int64, s *sender) {
	pm := &c.pm
	if pm.lo < pm.hi {
		pm.cand = (pm.lo + pm.hi + 1) / 2
		c.sendPair(now, s, pm.cand, c.controlSize(), candidateCopies)
		return
	}
	c.finish(now, pm.lo)
}

// finish ends a search that verified mtu.
func (c *conn) finish(now int64, mtu int) {
	pm := &c.pm
	pm.active, pm.verified, pm.misses = false, true, 0
	c.mtuVerified.Store(true)
	pm.confirm = now + int64(c.r.cfg.ProbeConfirmInterval)
	pm.next = now + int64(c.r.cfg.ProbeInterval)
	if mtu < c.r.maxMTU {
		pm.next = now + int64(c.r.cfg.ProbeRaiseInterval)
	}
	c.setMTU(mtu, c.failedText())
	c.setReason("")
}

// inconclusive ends a search in which nothing came back for 8*ProbeAttempts
// attempts in a row (2 s with the defaults):
// nothing is learned and the MTU stays; the search is tried again after
// ProbeRaiseInterval. A connection that never verified an MTU assumes the
// floor meanwhile.
func (c *conn) inconclusive(now int64) {
	pm := &c.pm
	pm.active = false
	pm.next = now + int64(c.r.cfg.ProbeRaiseInterval)
	pm.confirm = now + int64(c.r.cfg.ProbeConfirmInterval)
	c.r.log.Debug("path MTU search inconclusive: probes of every size lost", "peer", c.peer, "mtu", c.mtu.Load(), "size", pm.cand, "lost", pm.lost)
	if !pm.verified {
		floor := c.floor()
		c.setMTU(floor, "probes of every size lost")
		c.setReason(fmt.Sprintf("path MTU probing got no answer; assuming %d", floor))
	}
}

// confirmTick judges a confirmation of the verified MTU.
func (c *conn) confirmTick(now int64, s *sender) {
	pm := &c.pm
	candOK := c.probeAck.Load() == pm.candID
	ctlOK := c.probeAckCtl.Load() == pm.ctlID
	if !candOK && now < pm.deadline {
		return
	}
	pm.confirming = false
	pm.confirm = now + int64(c.r.cfg.ProbeConfirmInterval)
	switch {
	case candOK:
		pm.misses = 0
	case ctlOK:
		pm.misses++
		if pm.misses >= c.r.cfg.ProbeAttempts {
			c.r.log.Info("path MTU no longer confirmed: probes of the verified size lost while smaller ones came back; searching again",
				"peer", c.peer, "mtu", c.mtu.Load(), "lost", pm.misses)
			pm.misses = 0
			c.startSearch(now, s, false) // the MTU stays until the search ends
		}
	}
}

// sendPair queues copies probes of size cand and, unless ctl is 0 or not
// smaller, a control probe of size ctl.
func (c *conn) sendPair(now int64, s *sender, cand, ctl, copies int) {
	pm := &c.pm
	pm.deadline = now + int64(c.r.cfg.ProbeTimeout)
	pm.cand = cand
	pm.candID = c.nextProbeID(1)
	pm.ctl, pm.ctlID = 0, 0
	if ctl > 0 && ctl < cand {
		pm.ctl, pm.ctlID = ctl, c.nextProbeID(0)
	}
	a := c.addr.Load()
	if a == nil {
		return
	}
	c.probeSent(now, pm.candID, pm.ctlID)
	for range copies {
		buf, i := s.control(c, *a)
		s.commit(i, putProbe(buf, cand+FrameOverhead, c.r.self, c.counter.Add(1), c.uid, pm.candID))
		pm.sentIdx = i
	}
	if pm.ctl > 0 {
		buf, j := s.control(c, *a)
		s.commit(j, putProbe(buf, pm.ctl+FrameOverhead, c.r.self, c.counter.Add(1), c.uid, pm.ctlID))
	}
}

// nextProbeID returns a fresh probe id of the given parity: candidates are
// odd, controls even, so that the ack of each is kept apart.
func (c *conn) nextProbeID(parity uint32) uint32 {
	pm := &c.pm
	pm.lastID++
	if pm.lastID&1 != parity {
		pm.lastID++
	}
	if pm.lastID == 0 {
		pm.lastID = 2
	}
	return pm.lastID
}

// setMTU makes mtu the connection's MTU and logs why when it changes.
func (c *conn) setMTU(mtu int, why string) {
	if old := c.mtu.Swap(int32(mtu)); int(old) != mtu {
		c.r.log.Info("path MTU verified", "peer", c.peer, "mtu", mtu, "was", old, "why", why)
	}
}

// failedText says which sizes were judged too big in this search, how
// often they were lost, and what came back.
func (c *conn) failedText() string {
	pm := &c.pm
	if len(pm.failed) == 0 {
		return fmt.Sprintf("the largest size, %d, came back", pm.lo)
	}
	var b strings.Builder
	b.WriteString("too big: ")
	for i, f := range pm.failed {
		if i > 0 {
			b.WriteString(", ")
		}
		if f.icmp {
			fmt.Fprintf(&b, "%d (refused by the socket: ICMP fragmentation needed or a smaller interface)", f.size)
		} else {
			fmt.Fprintf(&b, "%d (lost %d times while a smaller probe came back)", f.size, f.losses)
		}
	}
	fmt.Fprintf(&b, "; %d came back", pm.lo)
	return b.String()
}
