package router

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/weftnet/weft/mesh"
)

// Pings over the overlay (`weft ping`). A ping is a record of a frames
// datagram, routed peer to peer like a unicast frame (relays forward it
// along their unicast routes), so it takes the path data takes: direct
// when the direct connection is established, else through a relay. The
// destination's router answers with a pong routed back the same way; the
// neighbour that delivered the pong says which path answered. Neither
// touches the device or the MAC table. A router answers every ping
// addressed to it with a pong of the same size, so a ping amplifies
// nothing; a pong that matches no ping in flight is dropped.

// Record types of pings.
const (
	// RecordPing asks the router of the record's destination peer to
	// answer with a RecordPong. Body: a ping id (8 bytes).
	RecordPing uint8 = 4
	// RecordPong answers a RecordPing. Body: the ping's id (8 bytes), the
	// answering router's clock in unix nanoseconds (8 bytes).
	RecordPong uint8 = 5

	pingBodyLen = 8
	pongBodyLen = 16
	// maxPings bounds the pings in flight on one router.
	maxPings = 64
)

// PingResult is the answer to one ping.
type PingResult struct {
	// Peer is the peer pinged.
	Peer mesh.PeerName
	// SentVia is the neighbour the ping went to first: Peer itself for
	// the direct path.
	SentVia mesh.PeerName
	// AnsweredVia is the neighbour that delivered the pong: Peer itself
	// when the direct path answered, else the last relay.
	AnsweredVia mesh.PeerName
	// RTT is the round trip time.
	RTT time.Duration
	// ClockOffset estimates the peer's clock minus ours: its clock when it
	// answered, less the middle of the round trip by ours.
	ClockOffset time.Duration
}

// Direct reports whether the ping went and came back over the direct
// connection to the peer.
func (p PingResult) Direct() bool { return p.SentVia == p.Peer && p.AnsweredVia == p.Peer }

// pendingPing is one ping in flight.
type pendingPing struct {
	peer mesh.PeerName
	id   uint64
	sent int64         // unix nanos it went out; 0: not yet
	via  mesh.PeerName // first hop
	done chan pingOutcome
}

type pingOutcome struct {
	res PingResult
	err error
}

// pinger holds the pings in flight: queued by Ping, sent by the timer
// goroutine, answered by the readers. At most maxPings are pending, and
// at most maxPings queued (those given up stay queued until the next
// tick). Safe for concurrent use; its zero value is ready.
type pinger struct {
	mu      sync.Mutex
	pending map[uint64]*pendingPing
	queue   []*pendingPing
}

// Ping sends one ping to peer over the overlay and waits for its answer
// until ctx is done. It fails with ErrNoPeerRoute when the router has no
// route to peer, ErrTooManyPings when maxPings are in flight, and the
// context's error when no answer came in time.
func (r *Router) Ping(ctx context.Context, peer mesh.PeerName) (PingResult, error) {
	if peer == r.self || peer == mesh.UnknownPeerName {
		return PingResult{}, fmt.Errorf("ping %s: %w", peer, ErrSelfConnection)
	}
	p := &pendingPing{peer: peer, done: make(chan pingOutcome, 1)}
	pg := &r.pings
	pg.mu.Lock()
	if len(pg.pending) >= maxPings || len(pg.queue) >= maxPings {
		pg.mu.Unlock()
		return PingResult{}, fmt.Errorf("ping %s: %w", peer, ErrTooManyPings)
	}
	if pg.pending == nil {
		pg.pending = map[uint64]*pendingPing{}
	}
	for p.id == 0 || pg.pending[p.id] != nil {
		p.id = rand.Uint64()
	}
	pg.pending[p.id] = p
	pg.queue = append(pg.queue, p)
	pg.mu.Unlock()
	r.wake()
	select {
	case o := <-p.done:
		return o.res, o.err
	case <-ctx.Done():
		pg.mu.Lock()
		delete(pg.pending, p.id)
		pg.mu.Unlock()
		return PingResult{}, fmt.Errorf("ping %s: no answer: %w", peer, ctx.Err())
	}
}

// send puts the queued pings into datagrams of s, along the unicast
// routes. Timer goroutine.
func (pg *pinger) send(r *Router, now int64, s *sender) {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if len(pg.queue) == 0 {
		return
	}
	routes := r.routes.Load()
	conns := *r.conns.Load()
	for _, p := range pg.queue {
		if pg.pending[p.id] != p {
			continue // given up
		}
		var c *conn
		hop, ok := routes.Unicast(p.peer)
		if ok {
			c = conns[hop]
		}
		var body [pingBodyLen]byte
		binary.BigEndian.PutUint64(body[:], p.id)
		if c == nil || !s.typed(c, RecordPing, r.self, p.peer, body[:]) {
			delete(pg.pending, p.id)
			p.done <- pingOutcome{err: fmt.Errorf("ping %s: %w", p.peer, ErrNoPeerRoute)}
			continue
		}
		p.sent, p.via = now, hop
	}
	clear(pg.queue)
	pg.queue = pg.queue[:0]
}

// answer completes the ping id with a pong from src that neighbour from
// delivered at now. A pong that matches no ping in flight of src is
// ignored. Readers.
func (pg *pinger) answer(id uint64, src, from mesh.PeerName, now, peerClock int64) {
	pg.mu.Lock()
	p := pg.pending[id]
	if p == nil || p.peer != src || p.sent == 0 {
		pg.mu.Unlock()
		return
	}
	delete(pg.pending, id)
	pg.mu.Unlock()
	rtt := now - p.sent
	p.done <- pingOutcome{res: PingResult{
		Peer: src, SentVia: p.via, AnsweredVia: from, RTT: time.Duration(rtt),
		ClockOffset: time.Duration(peerClock - (p.sent + rtt/2)),
	}}
}

// typed appends a record of type typ with body towards c. It reports
// false when c's data address is not known yet.
func (s *sender) typed(c *conn, typ uint8, src, dst mesh.PeerName, body []byte) bool {
	idx := s.slot(c, RecordHeaderLen+len(body), false)
	if idx < 0 {
		return false
	}
	n := s.lens[idx]
	s.lens[idx] = n + PutRecord(s.backing[idx][n:], typ, src, dst, body)
	s.records++
	return true
}

// ping handles a ping or pong record that neighbour from delivered:
// answered or completed when it is for us, else relayed along the
// unicast route. Readers; allocates nothing.
func (u *udpReader) ping(from mesh.PeerName, rec Record) {
	self := u.r.self
	switch {
	case rec.Src == self:
		u.st.drops[dropLoop].Add(1)
	case rec.Dst != self:
		u.st.relayed.Add(1)
		hop, ok := u.routes.Unicast(rec.Dst)
		if !ok {
			u.st.drops[dropNoRoute].Add(1)
			return
		}
		if c := u.connTo(hop); c != nil && !u.out.typed(c, rec.Type, rec.Src, rec.Dst, rec.Frame) {
			u.st.drops[dropNoRoute].Add(1)
		}
	case rec.Type == RecordPing:
		if len(rec.Frame) != pingBodyLen {
			u.st.drops[dropBadDatagram].Add(1)
			return
		}
		var body [pongBodyLen]byte
		copy(body[:], rec.Frame)
		binary.BigEndian.PutUint64(body[8:], uint64(u.r.cfg.Now().UnixNano()))
		hop, ok := u.routes.Unicast(rec.Src)
		if !ok {
			u.st.drops[dropNoRoute].Add(1)
			return
		}
		if c := u.connTo(hop); c != nil && !u.out.typed(c, RecordPong, self, rec.Src, body[:]) {
			u.st.drops[dropNoRoute].Add(1)
		}
	default:
		if len(rec.Frame) != pongBodyLen {
			u.st.drops[dropBadDatagram].Add(1)
			return
		}
		u.r.pings.answer(binary.BigEndian.Uint64(rec.Frame), rec.Src, from, u.r.cfg.Now().UnixNano(),
			int64(binary.BigEndian.Uint64(rec.Frame[8:])))
	}
}
