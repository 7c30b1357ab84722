package udp

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/router"
)

var loopback4 = netip.MustParseAddrPort("127.0.0.1:0")

func listen(t testing.TB, ap netip.AddrPort) *Conn {
	t.Helper()
	c, err := Listen(ap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dest(c *Conn) netip.AddrPort {
	return netip.AddrPortFrom(c.LocalAddr().Addr(), c.LocalPort())
}

func makeBatch(n, size int) []router.Datagram {
	d := make([]router.Datagram, n)
	for i := range d {
		d[i].Buf = make([]byte, size)
	}
	return d
}

// split copies a received datagram, or each datagram of a coalesced
// train, out of the receive buffer.
func split(d router.Datagram) []router.Datagram {
	var out []router.Datagram
	b := d.Buf[:d.N]
	for {
		k := len(b)
		if d.Segment > 0 {
			k = min(k, d.Segment)
		}
		out = append(out, router.Datagram{Buf: bytes.Clone(b[:k]), N: k, Addr: d.Addr})
		b = b[k:]
		if len(b) == 0 {
			return out
		}
	}
}

// readAll reads until want datagrams arrived or a deadline passes.
func readAll(t *testing.T, c *Conn, rx []router.Datagram, want int) []router.Datagram {
	t.Helper()
	var got []router.Datagram
	done := make(chan error, 1)
	go func() {
		for len(got) < want {
			n, err := c.ReadBatch(rx)
			if err != nil {
				done <- err
				return
			}
			for _, d := range rx[:n] {
				got = append(got, split(d)...)
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		c.Close()
		<-done
		t.Fatalf("got %d datagrams, want %d", len(got), want)
	}
	return got
}

func TestRoundTrip(t *testing.T) {
	for _, ap := range []netip.AddrPort{loopback4, netip.MustParseAddrPort("[::1]:0")} {
		t.Run(ap.Addr().String(), func(t *testing.T) {
			a, err := Listen(ap)
			if err != nil && ap.Addr().Is6() {
				t.Skipf("no IPv6 loopback: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close() })
			b := listen(t, ap)
			tx := makeBatch(8, 0)
			for i := range tx {
				tx[i].Buf = bytes.Repeat([]byte{byte(i)}, 100+i)
				tx[i].Addr = dest(b)
			}
			n, err := a.WriteBatch(tx)
			if err != nil || n != len(tx) {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			got := readAll(t, b, makeBatch(16, 2048), len(tx))
			for i, d := range got {
				if !bytes.Equal(d.Buf, tx[i].Buf) {
					t.Errorf("datagram %d: got %d bytes %x..., want %d", i, d.N, d.Buf[:1], len(tx[i].Buf))
				}
				if d.Addr != dest(a) {
					t.Errorf("datagram %d from %v, want %v", i, d.Addr, dest(a))
				}
			}
		})
	}
}

func TestReadBatchReturnsSeveral(t *testing.T) {
	a, b := listen(t, loopback4), listen(t, loopback4)
	tx := makeBatch(10, 64)
	for i := range tx {
		tx[i].Addr = dest(b)
	}
	if n, err := a.WriteBatch(tx); err != nil || n != 10 {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	n, err := b.ReadBatch(makeBatch(32, 128))
	if err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Errorf("one ReadBatch returned %d datagrams, want all 10 queued", n)
	}
}

func TestEMSGSIZE(t *testing.T) {
	a, b := listen(t, loopback4), listen(t, loopback4)
	tx := []router.Datagram{
		{Buf: make([]byte, 100), Addr: dest(b)},
		{Buf: make([]byte, 70000), Addr: dest(b)},
		{Buf: make([]byte, 100), Addr: dest(b)},
	}
	n, err := a.WriteBatch(tx)
	if n != 1 || !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("WriteBatch = %d, %v; want 1, EMSGSIZE", n, err)
	}
	n, err = a.WriteBatch(tx[2:])
	if n != 1 || err != nil {
		t.Fatalf("WriteBatch after EMSGSIZE = %d, %v", n, err)
	}
	if got := readAll(t, b, makeBatch(4, 256), 2); len(got) != 2 {
		t.Fatalf("received %d", len(got))
	}
}

func TestAddressFamily(t *testing.T) {
	a := listen(t, loopback4)
	tx := []router.Datagram{
		{Buf: make([]byte, 10), Addr: dest(a)},
		{Buf: make([]byte, 10), Addr: netip.MustParseAddrPort("[2001:db8::1]:9")},
	}
	n, err := a.WriteBatch(tx)
	if n != 1 || !errors.Is(err, ErrAddressFamily) {
		t.Fatalf("WriteBatch = %d, %v; want 1, ErrAddressFamily", n, err)
	}
}

func TestDontFragment(t *testing.T) {
	c := listen(t, loopback4)
	var v int
	var gerr error
	if err := c.raw.Control(func(fd uintptr) {
		v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	if v != unix.IP_PMTUDISC_PROBE {
		t.Errorf("IP_MTU_DISCOVER = %d, want IP_PMTUDISC_PROBE (%d)", v, unix.IP_PMTUDISC_PROBE)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	c, err := Listen(loopback4)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.ReadBatch(makeBatch(4, 64))
		done <- err
	}()
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("ReadBatch after Close returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch still blocked after Close")
	}
}

func TestSteadyStateAllocs(t *testing.T) {
	a, b := listen(t, loopback4), listen(t, loopback4)
	tx := makeBatch(16, 1400)
	for i := range tx {
		tx[i].Addr = dest(b)
	}
	rx := makeBatch(16, 2048)
	roundTrip := func() {
		if n, err := a.WriteBatch(tx); err != nil || n != len(tx) {
			t.Fatalf("WriteBatch = %d, %v", n, err)
		}
		for got := 0; got < len(tx); {
			n, err := b.ReadBatch(rx)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	}
	roundTrip()
	if allocs := testing.AllocsPerRun(100, roundTrip); allocs != 0 {
		t.Errorf("%.1f allocations per batch round trip, want 0", allocs)
	}
}

func BenchmarkBatch(b *testing.B) {
	for _, size := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("batch%d", size), func(b *testing.B) {
			src, dst := listen(b, loopback4), listen(b, loopback4)
			tx := makeBatch(size, 1400)
			for i := range tx {
				tx[i].Addr = dest(dst)
			}
			rx := makeBatch(size, 2048)
			b.ReportAllocs()
			b.SetBytes(int64(size * 1400))
			for b.Loop() {
				if _, err := src.WriteBatch(tx); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < size; {
					n, err := dst.ReadBatch(rx)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
		})
	}
}

func TestConcurrentWriters(t *testing.T) {
	a, b := listen(t, loopback4), listen(t, loopback4)
	const writers, batches, size = 4, 10, 8
	errc := make(chan error, writers)
	for w := range writers {
		go func() {
			tx := makeBatch(size, 32)
			for i := range tx {
				tx[i].Buf[0] = byte(w)
				tx[i].Addr = dest(b)
			}
			for range batches {
				if _, err := a.WriteBatch(tx); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	got := readAll(t, b, makeBatch(64, 64), writers*batches*size)
	for range writers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	perWriter := map[byte]int{}
	for _, d := range got {
		perWriter[d.Buf[0]]++
	}
	for w := range writers {
		if perWriter[byte(w)] != batches*size {
			t.Errorf("writer %d: %d datagrams arrived, want %d", w, perWriter[byte(w)], batches*size)
		}
	}
}

// sendTrain sends a train of n datagrams of seg bytes but the last (300
// bytes) from a to b; byte j of datagram i is i.
func sendTrain(t *testing.T, a, b *Conn, seg, n int) {
	t.Helper()
	if a.MaxSegments() == 0 {
		t.Skip("kernel without UDP segmentation offload")
	}
	buf := make([]byte, seg*(n-1)+300)
	for i := range buf {
		buf[i] = byte(i / seg)
	}
	if k, err := a.WriteBatch([]router.Datagram{{Buf: buf, Addr: dest(b), Segment: seg}}); k != 1 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", k, err)
	}
}

// checkTrain checks the datagrams sendTrain sent.
func checkTrain(t *testing.T, got []router.Datagram, seg, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d datagrams, want %d", len(got), n)
	}
	for i, d := range got {
		want := seg
		if i == n-1 {
			want = 300
		}
		if d.N != want || d.Buf[0] != byte(i) || d.Buf[d.N-1] != byte(i) {
			t.Fatalf("datagram %d: %d bytes starting %d, want %d bytes of %d", i, d.N, d.Buf[0], want, i)
		}
	}
}

func TestSegmentTrainArrivesAsDatagrams(t *testing.T) {
	a := listen(t, loopback4)
	b, err := ListenOptions(loopback4, Options{NoGRO: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Offloads()["udp_gro"] {
		t.Fatal("NoGRO socket reports udp_gro")
	}
	const seg, n = 1000, 5
	sendTrain(t, a, b, seg, n)
	rx := makeBatch(8, 2000)
	got := readAll(t, b, rx, n)
	for _, d := range rx {
		if d.Segment != 0 {
			t.Fatalf("NoGRO socket returned a coalesced train (segment %d)", d.Segment)
		}
	}
	checkTrain(t, got, seg, n)
}

func TestSegmentTrainArrivesCoalesced(t *testing.T) {
	a := listen(t, loopback4)
	b := listen(t, loopback4)
	if !b.Offloads()["udp_gro"] {
		t.Skip("kernel without UDP receive coalescing")
	}
	const seg, n = 1000, 40
	sendTrain(t, a, b, seg, n)
	rx := makeBatch(4, 65535)
	k, err := b.ReadBatch(rx)
	if err != nil || k != 1 {
		t.Fatalf("ReadBatch = %d, %v; want the whole train in one message", k, err)
	}
	if rx[0].Segment != seg || rx[0].N != seg*(n-1)+300 {
		t.Fatalf("received %d bytes in segments of %d, want %d in segments of %d", rx[0].N, rx[0].Segment, seg*(n-1)+300, seg)
	}
	checkTrain(t, split(rx[0]), seg, n)
}

func TestTruncatedTrainIsEmpty(t *testing.T) {
	a := listen(t, loopback4)
	b := listen(t, loopback4)
	if !b.Offloads()["udp_gro"] {
		t.Skip("kernel without UDP receive coalescing")
	}
	sendTrain(t, a, b, 1000, 10)
	rx := makeBatch(1, 5000)
	if k, err := b.ReadBatch(rx); err != nil || k != 1 {
		t.Fatalf("ReadBatch = %d, %v", k, err)
	}
	if rx[0].N != 0 {
		t.Fatalf("a train larger than the buffer came back with %d bytes, want 0", rx[0].N)
	}
}

func TestGROSegmentParsing(t *testing.T) {
	msg := func(level, typ int32, v int32) []byte {
		c := make([]byte, ctrlSpace)
		h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(4))
		*(*int32)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = v
		return c
	}
	cases := []struct {
		name string
		c    []byte
		n    int
		want int
	}{
		{"train", msg(unix.IPPROTO_UDP, unix.UDP_GRO, 1400), 5000, 1400},
		{"single datagram", msg(unix.IPPROTO_UDP, unix.UDP_GRO, 5000), 5000, 0},
		{"other message", msg(unix.IPPROTO_IP, unix.IP_TOS, 1400), 5000, 0},
		{"negative", msg(unix.IPPROTO_UDP, unix.UDP_GRO, -1), 5000, 0},
		{"empty", nil, 5000, 0},
		{"short", msg(unix.IPPROTO_UDP, unix.UDP_GRO, 1400)[:8], 5000, 0},
	}
	for _, tc := range cases {
		if got := groSegment(tc.c, tc.n); got != tc.want {
			t.Errorf("%s: groSegment = %d, want %d", tc.name, got, tc.want)
		}
	}
	bad := msg(unix.IPPROTO_UDP, unix.UDP_GRO, 1400)
	(*unix.Cmsghdr)(unsafe.Pointer(&bad[0])).SetLen(1000)
	if got := groSegment(bad, 5000); got != 0 {
		t.Errorf("length past the buffer: groSegment = %d, want 0", got)
	}
}

// TestRefusedTrainKeepsSegmentation: a train the kernel refuses for its
// path (here: the socket sends without UDP checksums, SO_NO_CHECK, with
// which Linux takes no UDP_SEGMENT train; a route through IPsec, or on
// kernels before 6.11 a device without checksum offload, refuse it the
// same way) comes back as router.ErrTrainRefused, so the router can send
// it datagram by datagram; the socket keeps offering trains for other
// paths, and single datagrams still go.
func TestRefusedTrainKeepsSegmentation(t *testing.T) {
	a := listen(t, loopback4)
	b := listen(t, loopback4)
	if a.MaxSegments() == 0 {
		t.Skip("kernel without UDP segmentation offload")
	}
	var serr error
	if err := a.raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) }); err != nil || serr != nil {
		t.Fatalf("SO_NO_CHECK: %v %v", err, serr)
	}
	buf := make([]byte, 1000*4+300)
	k, err := a.WriteBatch([]router.Datagram{{Buf: buf, Addr: dest(b), Segment: 1000}})
	if k != 0 || !errors.Is(err, router.ErrTrainRefused) {
		t.Fatalf("train on a socket without UDP checksums: WriteBatch = %d, %v; want 0 and ErrTrainRefused", k, err)
	}
	if a.MaxSegments() == 0 || !a.Offloads()["udp_gso"] {
		t.Error("one refused train turned segmentation off for the whole socket")
	}
	if k, err := a.WriteBatch([]router.Datagram{{Buf: buf[:1000], Addr: dest(b)}}); k != 1 || err != nil {
		t.Fatalf("single datagram after the refusal: WriteBatch = %d, %v", k, err)
	}
	got := readAll(t, b, makeBatch(4, 2000), 1)
	if got[0].N != 1000 {
		t.Errorf("received %d bytes, want 1000", got[0].N)
	}
}
