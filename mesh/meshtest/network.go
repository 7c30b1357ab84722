package meshtest

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weftnet/weft/mesh"
)

// Network is an in-memory TCP-like network between hosts named by IP
// address. Each host sees it through Host. Bytes written on a connection
// arrive in order after the link's latency; a lost segment arrives one
// retransmission timeout later, as TCP would deliver it. A partition
// between two hosts holds back what their connections send until it
// heals and makes new dials between them time out; Break resets their
// connections at once. Deadlines are kept on the virtual Clock.
type Network struct {
	clock *Clock

	mu        sync.Mutex
	latency   time.Duration
	loss      float64
	rto       time.Duration
	rng       *rand.Rand
	listeners map[netip.AddrPort]*listener
	nextPort  map[netip.Addr]uint16
	parted    map[hostPair]bool
	conns     map[*end]struct{}
	sent      map[netip.Addr]*atomic.Uint64
}

type hostPair struct{ a, b netip.Addr }

func pairOf(a, b netip.Addr) hostPair {
	if b.Less(a) {
		a, b = b, a
	}
	return hostPair{a, b}
}

// NewNetwork returns a network on clock with a one-way latency of 1 ms,
// no loss and a retransmission timeout of 200 ms. seed makes loss
// deterministic.
func NewNetwork(clock *Clock, seed uint64) *Network {
	return &Network{
		clock: clock, latency: time.Millisecond, rto: 200 * time.Millisecond,
		rng:       rand.New(rand.NewPCG(seed, 0x6d657368)),
		listeners: map[netip.AddrPort]*listener{}, nextPort: map[netip.Addr]uint16{},
		parted: map[hostPair]bool{}, conns: map[*end]struct{}{}, sent: map[netip.Addr]*atomic.Uint64{},
	}
}

// SetLatency sets the one-way latency of every link.
func (nw *Network) SetLatency(d time.Duration) {
	nw.mu.Lock()
	nw.latency = d
	nw.mu.Unlock()
}

// SetLoss sets the probability that a write is lost once and arrives a
// retransmission timeout late.
func (nw *Network) SetLoss(p float64) {
	nw.mu.Lock()
	nw.loss = p
	nw.mu.Unlock()
}

// Partition cuts (on true) or heals (on false) the link between hosts a
// and b. While cut, new dials between them time out and their open
// connections deliver nothing; on healing the held data arrives.
func (nw *Network) Partition(a, b netip.Addr, cut bool) {
	nw.mu.Lock()
	p := pairOf(a, b)
	if cut {
		nw.parted[p] = true
		nw.mu.Unlock()
		return
	}
	delete(nw.parted, p)
	var held []*end
	for e := range nw.conns {
		if pairOf(e.local.Addr(), e.remote.Addr()) == p {
			held = append(held, e)
		}
	}
	nw.mu.Unlock()
	for _, e := range held {
		e.release()
	}
}

// Break resets every open connection between hosts a and b, as a crash
// of the link's state would: both ends' reads and writes fail.
func (nw *Network) Break(a, b netip.Addr) int {
	nw.mu.Lock()
	p := pairOf(a, b)
	var broken []*end
	for e := range nw.conns {
		if pairOf(e.local.Addr(), e.remote.Addr()) == p {
			broken = append(broken, e)
		}
	}
	nw.mu.Unlock()
	for _, e := range broken {
		e.fail(syscall.ECONNRESET)
	}
	return len(broken) / 2
}

// BytesSent returns how many bytes host has written on its connections.
func (nw *Network) BytesSent(host netip.Addr) uint64 {
	return nw.counter(host).Load()
}

func (nw *Network) counter(host netip.Addr) *atomic.Uint64 {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	c := nw.sent[host]
	if c == nil {
		c = new(atomic.Uint64)
		nw.sent[host] = c
	}
	return c
}

// Host returns the network as host ip sees it.
func (nw *Network) Host(ip netip.Addr) *Host {
	return &Host{nw: nw, ip: ip, sent: nw.counter(ip)}
}

// Host is a mesh.Network for one host of a Network.
type Host struct {
	nw   *Network
	ip   netip.Addr
	sent *atomic.Uint64
}

// Listen listens on addr; its host part must be empty, unspecified or
// the host's own address.
func (h *Host) Listen(ctx context.Context, addr string) (net.Listener, error) {
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	if host.IsValid() && !host.IsUnspecified() && host != h.ip {
		return nil, fmt.Errorf("listen %s: %w", addr, syscall.EADDRNOTAVAIL)
	}
	nw := h.nw
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if port == 0 {
		for {
			nw.nextPort[h.ip]++
			port = 30000 + nw.nextPort[h.ip]
			if nw.listeners[netip.AddrPortFrom(h.ip, port)] == nil {
				break
			}
		}
	}
	ap := netip.AddrPortFrom(h.ip, port)
	if nw.listeners[ap] != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, syscall.EADDRINUSE)
	}
	l := &listener{nw: nw, host: h, addr: ap, notify: make(chan struct{}, 1), closed: make(chan struct{})}
	nw.listeners[ap] = l
	return l, nil
}

// Dial connects to addr. It takes one round trip of virtual time; a host
// behind a partition makes it time out, a port without a listener
// refuses it.
func (h *Host) Dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	nw := h.nw
	nw.mu.Lock()
	parted := nw.parted[pairOf(h.ip, host)]
	lat := nw.latency
	l := nw.listeners[netip.AddrPortFrom(host, port)]
	var c *end
	if !parted && l != nil {
		nw.nextPort[h.ip]++
		local := netip.AddrPortFrom(h.ip, 40000+nw.nextPort[h.ip])
		c = newEnd(nw, h.sent, local, l.addr)
		s := newEnd(nw, l.host.sent, l.addr, local)
		c.peer, s.peer = s, c
		nw.conns[c], nw.conns[s] = struct{}{}, struct{}{}
		l.push(s)
	}
	nw.mu.Unlock()
	wait := 2 * lat
	if parted {
		wait = timeout
		if wait <= 0 {
			wait = time.Minute
		}
	}
	t := nw.clock.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("dial %s: %w", addr, ctx.Err())
	case <-t.C():
	}
	switch {
	case parted:
		return nil, fmt.Errorf("dial %s: %w", addr, os.ErrDeadlineExceeded)
	case c == nil:
		return nil, fmt.Errorf("dial %s: %w", addr, syscall.ECONNREFUSED)
	}
	return c, nil
}

func splitAddr(addr string) (netip.Addr, uint16, error) {
	hs, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("address %q: %w", addr, err)
	}
	var host netip.Addr
	if hs != "" {
		if host, err = netip.ParseAddr(hs); err != nil {
			return netip.Addr{}, 0, fmt.Errorf("address %q: %w", addr, err)
		}
	}
	var port uint16
	if _, err := fmt.Sscanf(ps, "%d", &port); err != nil {
		return netip.Addr{}, 0, fmt.Errorf("address %q: bad port", addr)
	}
	return host, port, nil
}

// listener is a Host's listening socket.
type listener struct {
	nw     *Network
	host   *Host
	addr   netip.AddrPort
	mu     sync.Mutex
	queue  []*end
	notify chan struct{}
	closed chan struct{}
	once   sync.Once
}

func (l *listener) push(e *end) {
	l.mu.Lock()
	l.queue = append(l.queue, e)
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		select {
		case <-l.closed:
			return nil, fmt.Errorf("accept: %w", net.ErrClosed)
		default:
		}
		l.mu.Lock()
		if len(l.queue) > 0 {
			e := l.queue[0]
			l.queue = l.queue[1:]
			l.mu.Unlock()
			return e, nil
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-l.closed:
		}
	}
}

func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.nw.mu.Lock()
		delete(l.nw.listeners, l.addr)
		l.nw.mu.Unlock()
		l.mu.Lock()
		q := l.queue
		l.queue = nil
		l.mu.Unlock()
		for _, e := range q {
			e.Close()
		}
	})
	return nil
}

func (l *listener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.addr) }

// end is one end of an in-memory connection.
type end struct {
	nw            *Network
	sent          *atomic.Uint64
	local, remote netip.AddrPort
	peer          *end

	mu       sync.Mutex
	buf      []byte    // arrived, not yet read
	eof      bool      // the peer closed, everything before has arrived
	err      error     // reset
	held     [][]byte  // sent while partitioned; nil entry: our close
	lastAt   time.Time // arrival time of our latest segment at the peer
	closedUs bool
	rdl, wdl deadline
	notify   chan struct{}
	closed   chan struct{}
}

// deadline is a deadline on the virtual clock: ch is closed once it
// passes; nil ch means none.
type deadline struct {
	ch    chan struct{}
	timer mesh.Timer
}

func newEnd(nw *Network, sent *atomic.Uint64, local, remote netip.AddrPort) *end {
	return &end{nw: nw, sent: sent, local: local, remote: remote, notify: make(chan struct{}, 1), closed: make(chan struct{})}
}

func (e *end) wake() {
	select {
	case e.notify <- struct{}{}:
	default:
	}
}

func (e *end) Read(p []byte) (int, error) {
	for {
		e.mu.Lock()
		switch {
		case e.closedUs:
			e.mu.Unlock()
			return 0, fmt.Errorf("read: %w", net.ErrClosed)
		case len(e.buf) > 0:
			n := copy(p, e.buf)
			e.buf = e.buf[n:]
			if len(e.buf) == 0 {
				e.buf = nil // keep no drained burst's array
			}
			e.mu.Unlock()
			return n, nil
		case e.err != nil:
			err := e.err
			e.mu.Unlock()
			return 0, fmt.Errorf("read: %w", err)
		case e.eof:
			e.mu.Unlock()
			return 0, io.EOF
		case expired(e.rdl):
			e.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		dl := e.rdl.ch
		e.mu.Unlock()
		select {
		case <-e.notify:
		case <-e.closed:
		case <-dl:
		}
	}
}

func expired(d deadline) bool {
	if d.ch == nil {
		return false
	}
	select {
	case <-d.ch:
		return true
	default:
		return false
	}
}

// Write never blocks: the connection's buffers are unbounded.
func (e *end) Write(p []byte) (int, error) {
	e.mu.Lock()
	switch {
	case e.closedUs:
		e.mu.Unlock()
		return 0, fmt.Errorf("write: %w", net.ErrClosed)
	case e.err != nil:
		err := e.err
		e.mu.Unlock()
		return 0, fmt.Errorf("write: %w", err)
	case expired(e.wdl):
		e.mu.Unlock()
		return 0, os.ErrDeadlineExceeded
	}
	e.mu.Unlock()
	e.sent.Add(uint64(len(p)))
	e.transmit(append([]byte(nil), p...))
	return len(p), nil
}

// transmit sends b to the peer (nil b: our close), or holds it while the
// hosts are partitioned.
func (e *end) transmit(b []byte) {
	nw := e.nw
	nw.mu.Lock()
	parted := nw.parted[pairOf(e.local.Addr(), e.remote.Addr())]
	delay := nw.latency
	if nw.loss > 0 && b != nil && nw.rng.Float64() < nw.loss {
		delay += nw.rto
	}
	nw.mu.Unlock()
	e.mu.Lock()
	if parted || len(e.held) > 0 {
		e.held = append(e.held, b)
		e.mu.Unlock()
		return
	}
	at := nw.clock.Now().Add(delay)
	if at.Before(e.lastAt) {
		at = e.lastAt // in order, as TCP delivers
	}
	e.lastAt = at
	e.mu.Unlock()
	peer := e.peer
	nw.clock.AfterFunc(at.Sub(nw.clock.Now()), func() { peer.arrive(b) })
}

// release sends what a partition held back.
func (e *end) release() {
	e.mu.Lock()
	held := e.held
	e.held = nil
	e.mu.Unlock()
	for _, b := range held {
		e.transmit(b)
	}
}

// arrive delivers b (nil: the peer closed).
func (e *end) arrive(b []byte) {
	e.mu.Lock()
	if b == nil {
		e.eof = true
	} else if !e.closedUs && e.err == nil {
		e.buf = append(e.buf, b...)
	}
	e.mu.Unlock()
	e.wake()
}

// fail resets the connection.
func (e *end) fail(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
	e.wake()
}

func (e *end) Close() error {
	e.mu.Lock()
	if e.closedUs {
		e.mu.Unlock()
		return nil
	}
	e.closedUs = true
	stopDeadline(&e.rdl)
	stopDeadline(&e.wdl)
	reset := e.err != nil
	e.mu.Unlock()
	close(e.closed)
	e.nw.mu.Lock()
	delete(e.nw.conns, e)
	e.nw.mu.Unlock()
	if !reset {
		e.transmit(nil)
	}
	return nil
}

func stopDeadline(d *deadline) {
	if d.timer != nil {
		d.timer.Stop()
	}
	*d = deadline{}
}

func (e *end) LocalAddr() net.Addr  { return net.TCPAddrFromAddrPort(e.local) }
func (e *end) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(e.remote) }

func (e *end) SetDeadline(t time.Time) error {
	if err := e.SetReadDeadline(t); err != nil {
		return err
	}
	return e.SetWriteDeadline(t)
}

func (e *end) SetReadDeadline(t time.Time) error {
	e.setDeadline(&e.rdl, t)
	return nil
}

func (e *end) SetWriteDeadline(t time.Time) error {
	e.setDeadline(&e.wdl, t)
	return nil
}

func (e *end) setDeadline(d *deadline, t time.Time) {
	e.mu.Lock()
	stopDeadline(d)
	if !t.IsZero() {
		ch := make(chan struct{})
		d.ch = ch
		if wait := t.Sub(e.nw.clock.Now()); wait <= 0 {
			close(ch)
		} else {
			d.timer = e.nw.clock.AfterFunc(wait, func() { close(ch) })
		}
	}
	e.mu.Unlock()
	e.wake() // a blocked Read looks at the new deadline
}

var (
	_ mesh.Network = (*Host)(nil)
	_ net.Conn     = (*end)(nil)
)
