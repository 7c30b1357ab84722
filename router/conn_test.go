package router

import (
	"encoding/binary"
	"errors"
	"math/rand"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
)

// Deterministic tests of the connection timers: two routers joined by
// pipes, a fake clock, and ticks stepped by hand.

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

// linkPipe delivers written datagrams into a UDP reader's batch.
type linkPipe struct {
	from    netip.AddrPort
	to      *udpReader
	n       int
	limit   int // largest datagram carried; 0: any
	reject  int // larger datagrams fail WriteBatch, as with EMSGSIZE; 0: none
	blocked bool
	// lossy drops probes and probe acks at random with this probability.
	lossy float64
	rnd   *rand.Rand
	// hold keeps probes and acks back (delivered when hold ends, late).
	hold bool
	held [][]byte
}

// isProbe reports whether a datagram is a path MTU probe or its ack.
func isProbe(b []byte) bool { return len(b) > 1 && (b[1] == TypeProbe || b[1] == TypeProbeAck) }

// deliver puts one datagram into the reader's batch.
func (p *linkPipe) deliver(b []byte) {
	if p.n == len(p.to.dgrams) {
		return
	}
	dst := &p.to.dgrams[p.n]
	dst.N = copy(dst.Buf, b)
	dst.Addr = p.from
	p.n++
}

// release delivers what hold kept back.
func (p *linkPipe) release() {
	for _, b := range p.held {
		p.deliver(b)
	}
	p.held = p.held[:0]
}

func (p *linkPipe) ReadBatch([]Datagram) (int, error) { return 0, ErrConfig }
func (p *linkPipe) WriteBatch(d []Datagram) (int, error) {
	for i, x := range d {
		if p.reject > 0 && len(x.Buf) > p.reject {
			return i, errors.New("message too long")
		}
		if p.blocked || (p.limit > 0 && len(x.Buf) > p.limit) {
			continue
		}
		if isProbe(x.Buf) && p.lossy > 0 && p.rnd.Float64() < p.lossy {
			continue
		}
		if isProbe(x.Buf) && p.hold {
			p.held = append(p.held, slices.Clone(x.Buf))
			continue
		}
		p.deliver(x.Buf)
	}
	return len(d), nil
}
func (p *linkPipe) LocalPort() uint16 { return p.from.Port() }
func (p *linkPipe) Close() error      { return nil }

type steppedPair struct {
	clk        *fakeClock
	a, b       *Router
	ab, ba     *conn
	pab, pba   *linkPipe
	udpA, udpB *udpReader
	ta, tb     *timer
}

func newSteppedPair(t *testing.T) *steppedPair {
	t.Helper()
	addrA := netip.MustParseAddrPort("10.0.0.1:6783")
	addrB := netip.MustParseAddrPort("10.0.0.2:6783")
	s := &steppedPair{clk: &fakeClock{t: time.Unix(1000, 0)}, pab: &linkPipe{from: addrA}, pba: &linkPipe{from: addrB}}
	mk := func(self mesh.PeerName, tr Transport) *Router {
		r, err := New(Config{Self: self, Device: &sinkDevice{mtu: 1500}, Transport: tr, Now: s.clk.Now, SlowHeartbeat: 10 * time.Second, HeartbeatTimeout: 60 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	s.a, s.b = mk(peerA, s.pab), mk(peerB, s.pba)
	s.udpA, s.udpB = newUDPReader(s.a, s.a.cfg.Transport), newUDPReader(s.b, s.b.cfg.Transport)
	s.pab.to, s.pba.to = s.udpB, s.udpA
	s.ta = &timer{r: s.a, out: newSender(s.a, s.a.timerStats, 0)}
	s.tb = &timer{r: s.b, out: newSender(s.b, s.b.timerStats, 0)}
	oa, err := s.a.PrepareConnection(mesh.OverlayConnectionParams{
		LocalPeer: peerA, RemotePeer: peerB, Outbound: true, ConnUID: 42,
		RemoteAddr: netip.MustParseAddrPort("10.0.0.2:6783"), RemoteDataPort: 6783,
		SendControl: func(m []byte) error { s.ba.HandleControl(m); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := s.b.PrepareConnection(mesh.OverlayConnectionParams{
		LocalPeer: peerB, RemotePeer: peerA, ConnUID: 42,
		RemoteAddr:  netip.MustParseAddrPort("10.0.0.1:40000"),
		SendControl: func(m []byte) error { s.ab.HandleControl(m); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	s.ab, s.ba = oa.(*conn), ob.(*conn)
	s.ab.Confirm()
	s.ba.Confirm()
	return s
}

// step advances the clock by d, ticks both timers and delivers every
// datagram in flight.
func (s *steppedPair) step(d time.Duration) {
	s.clk.t = s.clk.t.Add(d)
	now := s.clk.t.UnixNano()
	s.ta.tick(now)
	s.tb.tick(now)
	for s.pab.n > 0 || s.pba.n > 0 {
		if n := s.pab.n; n > 0 {
			s.pab.n = 0
			s.udpB.handle(n)
		}
		if n := s.pba.n; n > 0 {
			s.pba.n = 0
			s.udpA.handle(n)
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestConnEstablishProbeFail(t *testing.T) {
	s := newSteppedPair(t)
	// The links carry datagrams of up to 1000 bytes.
	s.pab.limit, s.pba.limit = 1000, 1000
	if s.ba.addr.Load() != nil {
		t.Fatal("inbound side knows an address before any heartbeat")
	}
	for i := 0; i < 5 && !(isClosed(s.ab.Established()) && isClosed(s.ba.Established())); i++ {
		s.step(100 * time.Millisecond)
	}
	if !isClosed(s.ab.Established()) || !isClosed(s.ba.Established()) {
		t.Fatalf("not established: %+v %+v", s.ab.Status(), s.ba.Status())
	}
	if a := s.ba.addr.Load(); a == nil || *a != s.pab.from {
		t.Fatalf("inbound side learned %v", a)
	}

	// Path MTU probing starts at establishment.
	want := 1000 - FrameOverhead
	steps := 0
	for ; steps < 200 && (s.ab.Status().MTU != want || s.ba.Status().MTU != want); steps++ {
		s.step(100 * time.Millisecond)
	}
	if st := s.ab.Status(); st.MTU != want || st.Reason != "" {
		t.Fatalf("after %d steps: %+v, want MTU %d", steps, st, want)
	}
	// The search stops once it ends; heartbeats are slow now, and the
	// verified MTU is confirmed every 5 s (a probe of that size and a
	// control of the floor size).
	sent := s.a.Stats().UDPDatagramsOut
	s.step(5 * time.Second)
	s.step(5 * time.Second)
	if d := s.a.Stats().UDPDatagramsOut - sent; d != 5 {
		t.Fatalf("%d datagrams in 10s after probing, want 1 heartbeat and 2 confirmations of 2 probes each", d)
	}

	// Unencrypted, the inbound side is bound to the peer's address: a
	// heartbeat from another address (the peer behind a NAT that rebound)
	// is refused and only makes b challenge that address; a wrong echo
	// changes nothing; the path moves when a echoes the nonce over the
	// control connection.
	orig, dropped := s.pab.from, s.b.Stats().DropUnknownSender
	moved := netip.MustParseAddrPort("192.0.2.7:9999")
	s.pab.from = moved
	s.step(10 * time.Second)
	if a := s.ba.addr.Load(); a == nil || *a != orig {
		t.Fatalf("inbound side moved to %v on an unconfirmed heartbeat, want %v", a, orig)
	}
	if d := s.b.Stats().DropUnknownSender - dropped; d == 0 {
		t.Fatal("datagrams from an unexpected address were not counted")
	}
	ch := s.ba.challenge.Load()
	if ch == nil || ch.addr != moved {
		t.Fatalf("no challenge to %v: %+v", moved, ch)
	}
	wrong := make([]byte, ctlPathEchoLen)
	wrong[0] = ctlPathEcho
	binary.BigEndian.PutUint64(wrong[ctlUIDStart:], s.ba.uid)
	binary.BigEndian.PutUint64(wrong[ctlLen:], ch.nonce+1)
	s.ba.HandleControl(wrong)
	if a := s.ba.addr.Load(); *a != orig {
		t.Fatalf("moved to %v on a wrong echo", a)
	}
	s.step(100 * time.Millisecond) // a's timer echoes the nonce
	if a := s.ba.addr.Load(); *a != moved {
		t.Fatalf("inbound side did not follow the confirmed move: %v", a)
	}

	// Silence: both sides fail after the heartbeat timeout.
	s.pab.blocked, s.pba.blocked = true, true
	for range 7 {
		s.step(10 * time.Second)
	}
	for _, c := range []*conn{s.ab, s.ba} {
		select {
		case err := <-c.Failed():
			if !errors.Is(err, ErrHeartbeatTimeout) {
				t.Fatal(err)
			}
		default:
			t.Fatalf("no failure: %+v", c.Status())
		}
	}
	s.ab.Stop()
	s.ab.Stop()
	if _, ok := s.a.ConnectionStatus(peerB); ok {
		t.Fatal("stopped connection still registered")
	}
}

func TestProbeNoAnswerAssumesFloor(t *testing.T) {
	s := newSteppedPair(t)
	s.pab.limit = 100 // heartbeats pass, no probe does
	for range 400 {
		s.step(100 * time.Millisecond)
	}
	st := s.ab.Status()
	if st.MTU != MinMTU || st.Reason == "" {
		t.Fatalf("status %+v", st)
	}
}

func TestStaleConnUIDIgnored(t *testing.T) {
	s := newSteppedPair(t)
	b := make([]byte, 64)
	n := putHeartbeat(b, peerA, 1, 41) // an earlier connection's UID
	_, body, _ := ParseHeader(b[:n])
	if s.ba.gotHeartbeat(body, s.pab.from, 0) {
		t.Fatal("accepted a heartbeat of another connection")
	}
	s.ab.HandleControl([]byte{ctlHeard, 0, 0, 0, 0, 0, 0, 0, 41})
	if s.ab.heardBy.Load() {
		t.Fatal("accepted a control message of another connection")
	}
}

func TestProbeRejectedBySocket(t *testing.T) {
	s := newSteppedPair(t)
	s.pab.reject = 1000
	want := 1000 - FrameOverhead
	// Each refused size is known bad at the next tick, without waiting
	// for probe timeouts (250ms, far longer than a step).
	for range 40 {
		s.step(10 * time.Millisecond)
	}
	if st := s.ab.Status(); st.MTU != want {
		t.Fatalf("status %+v, want MTU %d", st, want)
	}
	if st := s.a.Stats(); st.DropSendError == 0 {
		t.Fatalf("stats %+v", st)
	}
}
