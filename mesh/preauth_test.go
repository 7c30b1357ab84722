package mesh

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestPreauthGate(t *testing.T) {
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	g := newPreauthGate(4, 3)
	var evicted []int
	admit := func(addr netip.Addr, id int) (*preauthSlot, bool) {
		return g.admit(addr, func() { evicted = append(evicted, id) })
	}
	var slots []*preauthSlot
	for i := range 3 {
		s, ok := admit(a, i)
		if !ok {
			t.Fatalf("conn %d from a refused under the per-address limit", i)
		}
		slots = append(slots, s)
	}
	if _, ok := admit(a, 3); ok {
		t.Fatal("4th conn from a admitted over the per-address limit of 3")
	}
	if _, ok := admit(b, 10); !ok {
		t.Fatal("conn from b refused with the total limit not reached")
	}
	// Full (4): c holds none, a holds 3: a's oldest gives way.
	sc, ok := admit(c, 20)
	if !ok || len(evicted) != 1 || evicted[0] != 0 {
		t.Fatalf("conn from c with the gate full: admitted %v, evicted %v; want admitted, a's oldest (0) evicted", ok, evicted)
	}
	if total, fromA := g.counts(a); total != 4 || fromA != 2 {
		t.Fatalf("after eviction: total %d, from a %d; want 4, 2", total, fromA)
	}
	// Full, and the busiest (a, 2) holds no more than b would (1+1): refused.
	if _, ok := admit(b, 11); ok {
		t.Fatal("2nd conn from b admitted with the gate full and no address busier than b would become")
	}
	slots[0].release() // evicted already: a no-op
	if total, _ := g.counts(a); total != 4 {
		t.Fatalf("release of an evicted slot changed the total to %d", total)
	}
	sc.release()
	sc.release()
	if total, fromC := g.counts(c); total != 3 || fromC != 0 {
		t.Fatalf("after release: total %d, from c %d; want 3, 0", total, fromC)
	}
	// IPv4-mapped addresses count as the IPv4 address.
	if _, ok := admit(netip.AddrFrom16(a.As16()), 4); !ok {
		t.Fatal("mapped a refused with a holding 2 of 3")
	}
	if _, fromA := g.counts(a); fromA != 3 {
		t.Fatalf("mapped address counted apart: from a %d, want 3", fromA)
	}
}

// stallingFrame is a frame header claiming claim bytes, then body
// bytes of it.
func stallingFrame(claim uint32, body int) []byte {
	b := binary.BigEndian.AppendUint32(nil, claim)
	return append(b, make([]byte, body)...)
}

// TestReadMsgAllocatesOnlyWhatArrives: a message that claims 10 MiB and
// delivers 1 KiB costs about 16 KiB, not 10 MiB.
func TestReadMsgAllocatesOnlyWhatArrives(t *testing.T) {
	frame := stallingFrame(DefaultMaxMessageSize, 1<<10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 10 {
		ch := newPlainChannel(struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(frame), io.Discard}, DefaultMaxMessageSize)
		if _, err := ch.ReadMsg(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("read of a truncated 10 MiB message: %v, want %v", err, io.ErrUnexpectedEOF)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 64<<10 {
		t.Fatalf("a 10 MiB claim with 1 KiB sent allocated %d bytes per read; want at most 64 KiB", per)
	}
	// Whole messages of every size still arrive intact.
	for _, size := range []int{1, readChunk - 1, readChunk, readChunk + 1, 3*readChunk + 7, 1 << 20} {
		var buf bytes.Buffer
		w := newPlainChannel(&buf, 0)
		msg := bytes.Repeat([]byte{0xab}, size)
		msg[size-1] = 0xcd
		if err := w.WriteMsg(msg); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteMsg([]byte{tagHeartbeat}); err != nil {
			t.Fatal(err)
		}
		r := newPlainChannel(&buf, 0)
		got, err := r.ReadMsg()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("message of %d bytes: read %d bytes, %v", size, len(got), err)
		}
		if got, err := r.ReadMsg(); err != nil || !bytes.Equal(got, []byte{tagHeartbeat}) {
			t.Fatalf("message after %d bytes: %x, %v", size, got, err)
		}
	}
}

// hostileDial connects to addr from local (nil: any) and, unless stall,
// plays the unencrypted handshake up to a features frame claiming claim
// bytes, of which it sends body.
func hostileDial(t *testing.T, local, addr string, claim uint32, body int) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if claim > 0 {
		msg := append(header{minVersion: ProtocolMinVersion, maxVersion: ProtocolMaxVersion}.encode(), stallingFrame(claim, body)...)
		if _, err := nc.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	return nc
}

// TestHandshakeRefusesLargeFeaturesClaim: a features frame longer than a
// features message can be ends the handshake at once, before the bytes
// arrive (it used to be allocated and awaited until the deadline).
func TestHandshakeRefusesLargeFeaturesClaim(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hostileDial(t, "", ln.Addr().String(), DefaultMaxMessageSize, 1<<10)
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	_, err = handshake(nc, handshakeConfig{
		local:    features{UID: 1, ConnNonce: 1},
		identity: testIdentity(1),
		header:   header{minVersion: 2, maxVersion: 2},
		timeout:  3 * time.Second, maxMsg: DefaultMaxMessageSize,
	})
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("handshake with a 10 MiB features claim: %v; want %v", err, ErrMessageTooLarge)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refusal took %v", d)
	}
}

// admitted reads from nc until the router's 7-byte header has
// arrived (the connection was admitted) or the connection ends (refused).
func admitted(nc net.Conn) bool {
	nc.SetReadDeadline(time.Now().Add(time.Second))
	var b [headerLen]byte
	_, err := io.ReadFull(nc, b[:])
	return err == nil
}

// TestNodePreauthLimits: stalled inbound connections beyond the per
// address limit are closed at once; with the gate full, a legitimate peer
// from another address still joins, and its handshake evicts a stalled one.
func TestNodePreauthLimits(t *testing.T) {
	a := startNode(t, 1, func(c *Config) {
		c.PreauthLimit, c.PreauthLimitPerAddr = 4, 3
		c.HandshakeTimeout = 20 * time.Second // longer than the test: only eviction closes a stalled conn
	})
	var in, out int
	var conns []net.Conn
	for range 10 {
		nc, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(a.addr())))
		if err == nil {
			t.Cleanup(func() { nc.Close() })
		}
		if err == nil && admitted(nc) {
			in++
			conns = append(conns, nc)
		} else {
			out++
		}
	}
	if in != 3 || out != 7 {
		t.Fatalf("10 stalled conns from one address with a limit of 3 each: %d admitted, %d closed; want 3, 7", in, out)
	}
	if !admitted(hostileDial(t, "127.0.0.3", a.addr(), 0, 0)) {
		t.Fatal("a stalled conn from a second address was refused below the total limit")
	}
	if total, _ := a.preauth.counts(netip.MustParseAddr("127.0.0.2")); total != 4 {
		t.Fatalf("gate holds %d, want 4", total)
	}
	b := startNode(t, 2, nil)
	b.connect(t, a)
	eventually(t, 5*time.Second, func() error {
		if _, ok := a.conn(2); !ok {
			return fmt.Errorf("peer 2 not registered on peer 1")
		}
		return nil
	})
	evicted := 0
	for _, nc := range conns {
		nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := nc.Read(make([]byte, 1)); err != nil && !errors.Is(err, syscall.EAGAIN) && !isTimeout(err) {
			evicted++
		}
	}
	if evicted != 1 {
		t.Errorf("%d of the stalled conns from the busiest address were closed, want 1", evicted)
	}
	if n := a.preauthRefused.Load(); n != 7 {
		t.Errorf("refused count %d, want 7", n)
	}
	if n := a.Status().Refusals[RefusalPreauth]; n != 7 {
		t.Errorf("status: %d refused by the pre-authentication gate, want 7", n)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// fakeListener fails every Accept with EMFILE until closed.
type fakeListener struct {
	calls  atomic.Int64
	closed chan struct{}
	once   sync.Once
}

func (l *fakeListener) Accept() (net.Conn, error) {
	l.calls.Add(1)
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
}
func (l *fakeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestAcceptBackoff: a listener that keeps failing is retried with a
// growing delay, not in a busy loop.
func TestAcceptBackoff(t *testing.T) {
	n, err := NewNode(testConfig(1, newFakeOverlay()))
	if err != nil {
		t.Fatal(err)
	}
	ln := &fakeListener{closed: make(chan struct{})}
	n.ln = ln
	n.wg.Add(1)
	go n.acceptLoop()
	time.Sleep(500 * time.Millisecond)
	n.cancel()
	ln.Close()
	n.wg.Wait()
	// 5+10+20+40+80+160+320 ms: 7 or 8 calls in 500 ms.
	if c := ln.calls.Load(); c > 12 {
		t.Fatalf("%d Accept calls in 500 ms on a failing listener; want at most 12", c)
	}
	for _, tc := range []struct{ prev, want time.Duration }{
		{0, minAcceptDelay}, {minAcceptDelay, 2 * minAcceptDelay},
		{maxAcceptDelay / 2, maxAcceptDelay}, {maxAcceptDelay, maxAcceptDelay},
	} {
		if got := nextAcceptDelay(tc.prev); got != tc.want {
			t.Errorf("nextAcceptDelay(%v) = %v, want %v", tc.prev, got, tc.want)
		}
	}
}
