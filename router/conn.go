package router

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/secure"
)

// Connection states.
const (
	statePending int32 = iota
	stateEstablished
	stateFailed
)

// Control messages sent with SendControl: one type byte and the ConnUID.
const (
	ctlHeard    = 1 // "your heartbeats reach me"
	ctlLen      = 1 + 8
	ctlUIDStart = 1
)

// conn is the data path of one control connection: the OverlayConnection
// the mesh holds. Fields read by the readers are atomics; the timer
// goroutine alone owns the fields under "timer-owned".
type conn struct {
	r        *Router
	p        mesh.OverlayConnectionParams
	peer     mesh.PeerName
	uid      uint64
	outbound bool
	keys     *secure.KeyRing // data keys; nil: datagrams travel unsealed
	ctlIP    netip.Addr      // address of the control connection's remote end (unmapped); may be invalid
	noFast   string          // why the connection cannot use the fast path; "": it may

	addr         atomic.Pointer[netip.AddrPort] // where to send; nil until known
	counter      atomic.Uint64                  // datagram counter (future nonce)
	mtu          atomic.Int32                   // effective MTU towards the peer
	lastHeard    atomic.Int64                   // unix nanos of the last valid heartbeat
	noTrains     atomic.Int64                   // unix nanos until which the path gets no trains; 0: trains
	trainsLogged atomic.Bool                    // a refusal of trains was logged at info
	heard        atomic.Bool                    // a valid heartbeat arrived
	heardBy      atomic.Bool                    // the peer says it hears us
	probeAck     atomic.Uint32                  // id of the last acknowledged candidate probe (odd ids)
	probeAckCtl  atomic.Uint32                  // id of the last acknowledged control probe (even ids)
	confirmed    atomic.Bool
	challenge    atomic.Pointer[pathChallenge] // live path challenge (unencrypted); nil: none
	echo         atomic.Uint64                 // nonce of a challenge to echo over the control connection; 0: none
	stopped      atomic.Bool
	state        atomic.Int32
	mtuVerified  atomic.Bool // a path MTU search verified mtu
	pc           peerCounters
	since        time.Time // when the data path was prepared

	estCh    chan struct{}
	failCh   chan error
	stopOnce sync.Once

	mu     sync.Mutex // guards reason
	reason string

	// timer-owned
	started  bool
	toldHear bool
	nextBeat int64
	epoch    uint32 // sending epoch of keys at the last tick
	pm       pmtuSearch
}

func newConn(r *Router, p mesh.OverlayConnectionParams) *conn {
	c := &conn{
		r:        r,
		p:        p,
		peer:     p.RemotePeer,
		uid:      p.ConnUID,
		outbound: p.Outbound,
		keys:     p.Keys,
		ctlIP:    p.RemoteAddr.Addr().Unmap(),
		estCh:    make(chan struct{}),
		failCh:   make(chan error, 1),
		since:    r.cfg.Now(),
	}
	if p.Keys != nil {
		c.epoch = p.Keys.Status().SendEpoch
	}
	c.noFast = r.fastPathRefusal(p)
	c.mtu.Store(int32(min(r.cfg.InitialMTU, r.maxMTU)))
	if p.Outbound && p.RemoteDataPort != 0 && p.RemoteAddr.Addr().IsValid() {
		a := netip.AddrPortFrom(p.RemoteAddr.Addr().Unmap(), p.RemoteDataPort)
		c.addr.Store(&a)
	}
	return c
}

// Confirm registers the connection with the readers and starts its
// heartbeats.
func (c *conn) Confirm() {
	if c.stopped.Load() || c.confirmed.Swap(true) {
		return
	}
	c.lastHeard.Store(c.r.cfg.Now().UnixNano())
	c.r.register(c)
	if c.noFast == "" {
		c.r.cfg.FastPath.Connect(c.peer, c.uid, c.ctlIP)
	}
	c.r.log.Debug("connection confirmed", "peer", c.peer, "outbound", c.outbound, "fastdp", c.noFast == "")
	c.r.wake()
}

// Established is closed once heartbeats flow both ways.
func (c *conn) Established() <-chan struct{} { return c.estCh }

// Failed delivers ErrHeartbeatTimeout when heartbeats stopped arriving.
func (c *conn) Failed() <-chan error { return c.failCh }

// HandleControl handles a message the peer sent with SendControl.
func (c *conn) HandleControl(msg []byte) {
	if len(msg) < ctlLen || binary.BigEndian.Uint64(msg[ctlUIDStart:]) != c.uid ||
		(msg[0] == ctlHeard && len(msg) != ctlLen) || (msg[0] == ctlPathEcho && len(msg) != ctlPathEchoLen) {
		c.r.log.Debug("ignoring control message", "peer", c.peer, "len", len(msg))
		return
	}
	switch msg[0] {
	case ctlPathEcho:
		if c.keys == nil {
			c.gotEcho(msg)
		}
	case ctlHeard:
		if !c.heardBy.Swap(true) {
			c.r.wake()
		}
	default:
		c.r.log.Debug("ignoring unknown control message", "peer", c.peer, "type", msg[0])
	}
}

// Status reports the connection's state, MTU and failure reason.
func (c *conn) Status() mesh.OverlayStatus {
	c.mu.Lock()
	reason := c.reason
	c.mu.Unlock()
	st := mesh.OverlayStatus{MTU: int(c.mtu.Load()), Encrypted: c.keys != nil, Reason: reason}
	c.pathStatus(&st)
	switch c.state.Load() {
	case stateEstablished:
		st.State = "established"
	case stateFailed:
		st.State = "failed"
	default:
		st.State = "pending"
		if st.Reason == "" && c.addr.Load() == nil {
			st.Reason = "waiting for the peer's first UDP heartbeat"
		}
	}
	return st
}

// Stop ends heartbeats and removes the connection from the readers.
func (c *conn) Stop() {
	c.stopOnce.Do(func() {
		c.stopped.Store(true)
		c.r.unregister(c)
		if c.noFast == "" {
			c.r.cfg.FastPath.Disconnect(c.peer, c.uid)
		}
	})
}

// fromPeer reports whether an unsealed datagram of type typ from address
// from may come from the peer, for a connection without data keys.
// Nothing authenticates such a datagram but its source, so the connection
// is bound to one address: the peer's data address once known (the
// control connection's address and the announced data port when we
// dialled; the source of the first heartbeat from the control
// connection's address when the peer dialled). Before it is known only a
// heartbeat from the control connection's address is taken. A datagram
// from any other address is refused, so a forged heartbeat cannot move
// the path: a heartbeat from a new address only starts a path challenge,
// confirmed over the control connection (pathchange.go). Readers;
// allocates nothing.
func (c *conn) fromPeer(from netip.AddrPort, typ uint8) bool {
	if a := c.addr.Load(); a != nil {
		return a.Port() == from.Port() && a.Addr().Unmap() == from.Addr().Unmap()
	}
	return typ == TypeHeartbeat && (!c.ctlIP.IsValid() || c.ctlIP == from.Addr().Unmap())
}

// gotHeartbeat handles a heartbeat body from addr. Called by the UDP
// reader; allocates only when the peer's address changes.
func (c *conn) gotHeartbeat(body []byte, from netip.AddrPort, now int64) bool {
	uid, err := parseHeartbeat(body)
	if err != nil || uid != c.uid {
		return false
	}
	c.lastHeard.Store(now)
	// Only an authenticated (sealed) heartbeat moves the path; an
	// unsealed one sets it once (fromPeer refused any other source).
	if !c.outbound {
		if a := c.addr.Load(); a == nil || (c.keys != nil && *a != from) {
			c.addr.Store(&from)
			c.r.log.Debug("learned peer address", "peer", c.peer, "addr", from)
		}
	}
	if !c.heard.Swap(true) {
		c.r.wake()
	}
	return true
}

// setReason records why the connection is degraded or failed.
func (c *conn) setReason(s string) {
	c.mu.Lock()
	c.reason = s
	c.mu.Unlock()
}

// fail marks the connection failed and reports err once.
func (c *conn) fail(err error) {
	c.state.Store(stateFailed)
	c.setReason(err.Error())
	select {
	case c.failCh <- err:
	default:
	}
	c.r.log.Info("connection failed", "peer", c.peer, "err", err)
	c.r.failures.note(c.peer, err.Error(), c.r.cfg.Now())
}

// tick runs the connection's timers: failure, telling the peer we hear
// it, establishment, heartbeats and path MTU probing. Timer goroutine only.
func (c *conn) tick(now int64, s *sender) {
	c.pm.sentIdx = -1
	if c.stopped.Load() || c.state.Load() == stateFailed {
		return
	}
	cfg := &c.r.cfg
	if !c.started {
		c.started = true
		c.nextBeat = now
	}
	if now-c.lastHeard.Load() > int64(cfg.HeartbeatTimeout) {
		c.fail(ErrHeartbeatTimeout)
		return
	}
	if c.keys != nil {
		if err := c.keys.Tick(time.Unix(0, now)); err != nil {
			c.fail(fmt.Errorf("data keys: %w", err))
			return
		}
		// A new sending epoch: beat now, so that the peer's ring, which
		// looks one epoch ahead only, follows even when no data flows.
		if e := c.keys.Status().SendEpoch; e != c.epoch {
			c.epoch = e
			c.pc.rekeys.Add(1)
			c.nextBeat = now
		}
	}
	if c.heard.Load() && !c.toldHear {
		var msg [ctlLen]byte
		msg[0] = ctlHeard
		binary.BigEndian.PutUint64(msg[ctlUIDStart:], c.uid)
		if err := c.p.SendControl(msg[:]); err != nil {
			c.r.log.Debug("send control", "peer", c.peer, "err", err)
		} else {
			c.toldHear = true
		}
	}
	c.sendEcho()
	established := c.state.Load() == stateEstablished
	if !established && c.heard.Load() && c.heardBy.Load() {
		established = true
		c.state.Store(stateEstablished)
		close(c.estCh)
		c.r.log.Info("connection established", "peer", c.peer)
		c.pm.next = now // probe at once
	}
	// Without an address (inbound, before the first heartbeat) the beat
	// stays due, so that it goes out as soon as the address is learned.
	if a := c.addr.Load(); a != nil && now >= c.nextBeat {
		buf, i := s.control(c, *a)
		s.commit(i, putHeartbeat(buf, c.r.self, c.counter.Add(1), c.uid))
		if established {
			c.nextBeat = now + int64(cfg.SlowHeartbeat)
		} else {
			c.nextBeat = now + int64(cfg.FastHeartbeat)
		}
	}
	if established {
		c.probeTick(now, s)
	}
}
