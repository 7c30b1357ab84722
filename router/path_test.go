package router

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
)

// Stubs that let the per-frame path run without goroutines and without
// allocating, so that AllocsPerRun and benchmarks measure the router only.

// sinkDevice counts written frames and keeps a copy of the last one
// (with its virtio-net header when vnet).
type sinkDevice struct {
	mtu    int
	frames int
	last   []byte
	vnet   bool
}

func (d *sinkDevice) VnetHdr() bool { return d.vnet }

func (d *sinkDevice) Read([][]byte, []int, int) (int, error) { return 0, ErrConfig }
func (d *sinkDevice) Write(bufs [][]byte, off int) (int, error) {
	if d.vnet {
		off -= VnetHdrLen
	}
	for _, b := range bufs {
		d.last = append(d.last[:0], b[off:]...)
	}
	d.frames += len(bufs)
	return len(bufs), nil
}
func (d *sinkDevice) MTU() int     { return d.mtu }
func (d *sinkDevice) Close() error { return nil }

// pipeTransport copies written datagrams into the receive batch of a UDP
// reader (when set) or into a reusable buffer. With maxSegments it takes
// trains, which arrive whole (as with UDP_GRO).
type pipeTransport struct {
	port        uint16
	to          *udpReader
	n           int // datagrams waiting in to.dgrams
	batches     int
	sent        int
	scratch     []byte
	maxSegments int
}

func (p *pipeTransport) MaxSegments() int { return p.maxSegments }

func (p *pipeTransport) ReadBatch([]Datagram) (int, error) { return 0, ErrConfig }
func (p *pipeTransport) WriteBatch(d []Datagram) (int, error) {
	p.batches++
	p.sent += len(d)
	for _, x := range d {
		if p.to != nil && p.n < len(p.to.dgrams) {
			dst := &p.to.dgrams[p.n]
			dst.N = copy(dst.Buf, x.Buf)
			dst.Segment = x.Segment
			dst.Addr = fromA
			p.n++
		} else {
			p.scratch = append(p.scratch[:0], x.Buf...)
		}
	}
	return len(d), nil
}
func (p *pipeTransport) LocalPort() uint16 { return p.port }
func (p *pipeTransport) Close() error      { return nil }

// pathPair is two routers a and b joined by established connections.
type pathPair struct {
	a, b       *Router
	devA, devB *sinkDevice
	trA, trB   *pipeTransport
	tapA       *tapReader
	udpB       *udpReader
}

// fromA is the address b hears a from.
var fromA = netip.MustParseAddrPort("10.0.0.1:6783")

const (
	peerA mesh.PeerName = 0x0a
	peerB mesh.PeerName = 0x0b
)

func newPathPair(t testing.TB) *pathPair {
	t.Helper()
	return newPathPairWith(t, nil)
}

// newPathPairWith is newPathPair with mod adjusting the devices and
// transports before the routers are made.
func newPathPairWith(t testing.TB, mod func(*pathPair)) *pathPair {
	t.Helper()
	p := &pathPair{devA: &sinkDevice{mtu: 1500}, devB: &sinkDevice{mtu: 1500}, trA: &pipeTransport{port: 1}, trB: &pipeTransport{port: 2}}
	if mod != nil {
		mod(p)
	}
	var err error
	if p.a, err = New(Config{Self: peerA, Device: p.devA, Transport: p.trA}); err != nil {
		t.Fatal(err)
	}
	if p.b, err = New(Config{Self: peerB, Device: p.devB, Transport: p.trB}); err != nil {
		t.Fatal(err)
	}
	// a sends to 10.0.0.2; b hears a from 10.0.0.1 (pipeTransport.WriteBatch).
	for _, x := range []struct {
		r    *Router
		peer mesh.PeerName
		addr netip.AddrPort
	}{{p.a, peerB, netip.MustParseAddrPort("10.0.0.2:6783")}, {p.b, peerA, fromA}} {
		addr := x.addr
		oc, err := x.r.PrepareConnection(mesh.OverlayConnectionParams{
			LocalPeer: x.r.self, RemotePeer: x.peer, Outbound: true, ConnUID: 1,
			RemoteAddr: addr, RemoteDataPort: addr.Port(), SendControl: func([]byte) error { return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		oc.Confirm()
		x.r.RoutesChanged(mesh.NewRoutes(x.r.self,
			map[mesh.PeerName]mesh.PeerName{x.peer: x.peer},
			map[mesh.PeerName][]mesh.PeerName{x.r.self: {x.peer}, x.peer: nil}))
	}
	p.tapA = newTAPReader(p.a, p.devA)
	p.udpB = newUDPReader(p.b, p.trB)
	p.trA.to = p.udpB
	return p
}

// fill puts n copies of frame into the TAP reader's read buffers.
func (p *pathPair) fill(n int, frame []byte) {
	for i := range n {
		p.tapA.sizes[i] = copy(p.tapA.bufs[i][tapHeadroom:], frame)
	}
}

// roundTrip switches n frames at a and delivers the datagrams at b.
func (p *pathPair) roundTrip(n int) {
	p.trA.n = 0
	p.tapA.handle(n)
	p.udpB.handle(p.trA.n)
}

func now() int64 { return time.Now().UnixNano() }

// ethFrame returns a frame from src to dst MAC of n bytes in total.
func ethFrame(dst, src byte, n int) []byte {
	f := make([]byte, n)
	copy(f, []byte{2, 0, 0, 0, 0, dst, 2, 0, 0, 0, 0, src, 0x08, 0x00})
	for i := EthernetHeaderLen; i < n; i++ {
		f[i] = byte(i)
	}
	return f
}

func TestRoundTripBatchesAndAllocs(t *testing.T) {
	p := newPathPair(t)
	// Teach a that MAC ..:0b is behind b, and b that ..:0a is behind a.
	p.b.macs.learn(macKey([]byte{2, 0, 0, 0, 0, 0x0b}), peerB, now())
	p.a.macs.learn(macKey([]byte{2, 0, 0, 0, 0, 0x0b}), peerB, now())
	p.fill(32, ethFrame(0x0b, 0x0a, 100))
	p.roundTrip(32)
	// 12 records of 100+16 bytes fit a datagram for the initial MTU.
	if p.trA.batches != 1 || p.trA.sent != 3 {
		t.Fatalf("32 small frames took %d batches, %d datagrams; want 1 and 3", p.trA.batches, p.trA.sent)
	}
	if p.devB.frames != 32 {
		t.Fatalf("b delivered %d frames, want 32", p.devB.frames)
	}
	p.fill(32, ethFrame(0x0b, 0x0a, 1400))
	p.trA.batches, p.trA.sent = 0, 0
	p.roundTrip(32)
	if p.trA.batches != 1 || p.trA.sent != 32 {
		t.Fatalf("32 big frames took %d batches, %d datagrams; want 1 and 32", p.trA.batches, p.trA.sent)
	}
	allocs := testing.AllocsPerRun(50, func() { p.roundTrip(32) })
	if allocs != 0 {
		t.Fatalf("round trip of 32 frames allocates %v times", allocs)
	}
	st := p.b.Stats()
	if st.RecordsIn == 0 || st.TAPFramesOut != st.RecordsIn {
		t.Fatalf("b stats %+v", st)
	}
}

func TestBroadcastAndUnknownNoAllocs(t *testing.T) {
	p := newPathPair(t)
	arp := ethFrame(0xff, 0x0a, 60)
	copy(arp, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	p.fill(8, arp)
	for i := 8; i < 16; i++ {
		p.tapA.sizes[i] = copy(p.tapA.bufs[i][tapHeadroom:], ethFrame(0x77, 0x0a, 200)) // unknown unicast
	}
	p.roundTrip(16)
	if p.devB.frames != 16 {
		t.Fatalf("b delivered %d frames, want 16", p.devB.frames)
	}
	if allocs := testing.AllocsPerRun(50, func() { p.roundTrip(16) }); allocs != 0 {
		t.Fatalf("flooding allocates %v times", allocs)
	}
}

func TestCapturedDropRules(t *testing.T) {
	p := newPathPair(t)
	stp := ethFrame(0, 0x0a, 60)
	copy(stp, []byte{0x01, 0x80, 0xc2, 0, 0, 0})
	mcastSrc := ethFrame(0x0b, 0x0a, 60)
	mcastSrc[6] = 0x01
	p.a.macs.learn(macKey([]byte{2, 0, 0, 0, 0, 0x0c}), peerA, now())
	local := ethFrame(0x0c, 0x0a, 60)
	for i, f := range [][]byte{stp, mcastSrc, local, ethFrame(0, 0, 10)} {
		p.tapA.sizes[i] = copy(p.tapA.bufs[i][tapHeadroom:], f)
	}
	p.roundTrip(4)
	st := p.a.Stats()
	if st.DropLinkLocal != 1 || st.DropBadFrame != 2 || p.trA.sent != 0 {
		t.Fatalf("stats %+v, sent %d", st, p.trA.sent)
	}
}

func BenchmarkEncapsulate(b *testing.B) {
	p := newPathPair(b)
	p.trA.to = nil
	p.a.macs.learn(macKey([]byte{2, 0, 0, 0, 0, 0x0b}), peerB, now())
	p.fill(32, ethFrame(0x0b, 0x0a, 1400))
	p.tapA.handle(32) // warm up: buffers grow on first use
	b.ReportAllocs()
	b.SetBytes(32 * 1400)
	for b.Loop() {
		p.tapA.handle(32)
	}
}

func BenchmarkDecapsulate(b *testing.B) {
	p := newPathPair(b)
	p.a.macs.learn(macKey([]byte{2, 0, 0, 0, 0, 0x0b}), peerB, now())
	p.fill(32, ethFrame(0x0b, 0x0a, 1400))
	p.trA.n = 0
	p.tapA.handle(32)
	n := p.trA.n
	b.ReportAllocs()
	b.SetBytes(32 * 1400)
	for b.Loop() {
		p.udpB.handle(n)
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{100, 1400} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			p := newPathPair(b)
			p.a.macs.learn(macKey([]byte{2, 0, 0, 0, 0, 0x0b}), peerB, now())
			p.fill(32, ethFrame(0x0b, 0x0a, size))
			p.roundTrip(32) // warm up: buffers grow on first use
			b.ReportAllocs()
			b.SetBytes(int64(32 * size))
			for b.Loop() {
				p.roundTrip(32)
			}
		})
	}
}
