package routertest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/weftnet/weft/router"
)

// LinkConfig shapes the datagrams from one address to another.
type LinkConfig struct {
	// Loss is the probability in [0,1] that a datagram is lost.
	Loss float64
	// MTU is the largest underlay IP packet (UDP payload plus 28 bytes)
	// the link carries; larger datagrams vanish silently, as on a path
	// that drops DF packets without telling. 0 means no limit.
	MTU int
	// Blocked drops everything.
	Blocked bool
}

// Network is an in-memory UDP network connecting Transports by address.
type Network struct {
	mu    sync.Mutex
	nodes map[netip.AddrPort]*Transport
	links map[[2]netip.AddrPort]LinkConfig
	rng   *rand.Rand
	pool  sync.Pool // *[]byte of router.MaxDatagram bytes
	lost  atomic.Uint64
}

// NewNetwork returns an empty network whose losses follow seed.
func NewNetwork(seed uint64) *Network {
	n := &Network{
		nodes: make(map[netip.AddrPort]*Transport),
		links: make(map[[2]netip.AddrPort]LinkConfig),
		rng:   rand.New(rand.NewPCG(seed, seed)),
	}
	n.pool.New = func() any {
		b := make([]byte, router.MaxDatagram)
		return &b
	}
	return n
}

// SetLink shapes the datagrams sent from one address to another.
func (n *Network) SetLink(from, to netip.AddrPort, cfg LinkConfig) {
	n.mu.Lock()
	n.links[[2]netip.AddrPort{from, to}] = cfg
	n.mu.Unlock()
}

// SetLinkBoth shapes both directions between a and b.
func (n *Network) SetLinkBoth(a, b netip.AddrPort, cfg LinkConfig) {
	n.SetLink(a, b, cfg)
	n.SetLink(b, a, cfg)
}

// Lost counts datagrams dropped by links, full queues or unknown
// destinations.
func (n *Network) Lost() uint64 { return n.lost.Load() }

// Transport returns a new transport bound to addr whose receive queue
// holds queue datagrams.
func (n *Network) Transport(addr netip.AddrPort, queue int) *Transport {
	t := &Transport{
		net:    n,
		addr:   addr,
		queue:  make(chan packet, queue),
		closed: make(chan struct{}),
	}
	n.mu.Lock()
	n.nodes[addr] = t
	n.mu.Unlock()
	return t
}

// peek returns the transport bound to addr, if any.
func (n *Network) peek(addr netip.AddrPort) *Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodes[addr]
}

// route decides the fate of one datagram and returns its receiver.
func (n *Network) route(from, to netip.AddrPort, size int) *Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	dst := n.nodes[to]
	cfg := n.links[[2]netip.AddrPort{from, to}]
	switch {
	case dst == nil, cfg.Blocked,
		cfg.MTU > 0 && size+router.UnderlayOverhead > cfg.MTU,
		cfg.Loss > 0 && n.rng.Float64() < cfg.Loss:
		return nil
	}
	return dst
}

type packet struct {
	buf  *[]byte
	n    int
	from netip.AddrPort
	seg  int // a coalesced train of datagrams of this size
}

// Transport is one endpoint of a Network. It implements router.Transport.
type Transport struct {
	net       *Network
	addr      netip.AddrPort
	queue     chan packet
	closed    chan struct{}
	closeOnce sync.Once
	sent      atomic.Uint64
	batches   atomic.Uint64
	trains    atomic.Uint64

	// Set by EnableTrains before use.
	maxSegments int
	coalesce    bool

	refuseMu sync.Mutex
	refuse   map[netip.AddrPort]bool // set by RefuseTrainsTo
}

// RefuseTrainsTo makes WriteBatch refuse trains to addr with an error
// wrapping router.ErrTrainRefused, as Linux refuses UDP_SEGMENT on some
// paths (IPsec). Single datagrams still go.
func (t *Transport) RefuseTrainsTo(addr netip.AddrPort) {
	t.refuseMu.Lock()
	defer t.refuseMu.Unlock()
	if t.refuse == nil {
		t.refuse = make(map[netip.AddrPort]bool)
	}
	t.refuse[addr] = true
}

// refuses reports whether trains to addr are refused.
func (t *Transport) refuses(addr netip.AddrPort) bool {
	t.refuseMu.Lock()
	defer t.refuseMu.Unlock()
	return t.refuse[addr]
}

var _ router.Segmenter = (*Transport)(nil)

// EnableTrains makes the transport take trains of up to maxSegments
// datagrams (router.Datagram.Segment) as Linux does with UDP_SEGMENT and,
// with coalesce, receive trains whole as Linux does with UDP_GRO; without
// it a train arrives datagram by datagram. Call it before the transport
// is used.
func (t *Transport) EnableTrains(maxSegments int, coalesce bool) {
	t.maxSegments, t.coalesce = maxSegments, coalesce
}

// MaxSegments implements router.Segmenter.
func (t *Transport) MaxSegments() int { return t.maxSegments }

// Trains counts the trains passed to WriteBatch.
func (t *Transport) Trains() uint64 { return t.trains.Load() }

// Addr is the transport's address.
func (t *Transport) Addr() netip.AddrPort { return t.addr }

// Sent counts datagrams passed to WriteBatch; Batches counts the calls.
func (t *Transport) Sent() (datagrams, batches uint64) { return t.sent.Load(), t.batches.Load() }

// WriteBatch implements router.Transport. Datagrams the network drops
// count as sent, as with UDP.
func (t *Transport) WriteBatch(dgrams []router.Datagram) (int, error) {
	select {
	case <-t.closed:
		return 0, fmt.Errorf("write batch from %s: %w", t.addr, ErrClosed)
	default:
	}
	t.batches.Add(1)
	for i, d := range dgrams {
		if len(d.Buf) > router.MaxDatagram {
			return i, fmt.Errorf("write %d bytes: message too long", len(d.Buf))
		}
		seg := d.Segment
		if seg <= 0 || seg >= len(d.Buf) {
			t.send(d.Buf, d.Addr, 0)
			continue
		}
		if t.maxSegments == 0 || (len(d.Buf)+seg-1)/seg > t.maxSegments {
			return i, fmt.Errorf("write train of %d bytes in segments of %d: not supported", len(d.Buf), seg)
		}
		if t.refuses(d.Addr) {
			return i, fmt.Errorf("write train to %s: %w", d.Addr, router.ErrTrainRefused)
		}
		t.trains.Add(1)
		if dst := t.net.peek(d.Addr); dst != nil && dst.coalesce {
			t.send(d.Buf, d.Addr, seg)
			continue
		}
		for b := d.Buf; len(b) > 0; b = b[min(seg, len(b)):] {
			t.send(b[:min(seg, len(b))], d.Addr, 0)
		}
	}
	return len(dgrams), nil
}

// send puts one datagram, or one train of datagrams of seg bytes, on the
// network. A train's fate is decided once, by its datagram size.
func (t *Transport) send(buf []byte, to netip.AddrPort, seg int) {
	t.sent.Add(1)
	size := len(buf)
	if seg > 0 {
		size = seg
	}
	dst := t.net.route(t.addr, to, size)
	if dst == nil {
		t.net.lost.Add(1)
		return
	}
	b := t.net.pool.Get().(*[]byte)
	p := packet{buf: b, n: copy(*b, buf), from: t.addr, seg: seg}
	select {
	case dst.queue <- p:
	default:
		t.net.pool.Put(b)
		t.net.lost.Add(1)
	}
}

// ReadBatch implements router.Transport.
func (t *Transport) ReadBatch(dgrams []router.Datagram) (int, error) {
	select {
	case p := <-t.queue:
		t.take(&dgrams[0], p)
	case <-t.closed:
		return 0, fmt.Errorf("read batch on %s: %w", t.addr, ErrClosed)
	}
	n := 1
	for n < len(dgrams) {
		select {
		case p := <-t.queue:
			t.take(&dgrams[n], p)
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

func (t *Transport) take(d *router.Datagram, p packet) {
	d.N = copy(d.Buf, (*p.buf)[:p.n])
	d.Addr = p.from
	d.Segment = p.seg
	t.net.pool.Put(p.buf)
}

// LocalPort implements router.Transport.
func (t *Transport) LocalPort() uint16 { return t.addr.Port() }

// Close implements router.Transport; blocked reads return an error.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() { close(t.closed) })
	return nil
}
