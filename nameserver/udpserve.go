package nameserver

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
)

// maxForwarding bounds the queries of one UDP socket being forwarded at
// once; more are dropped (the client retries), so a flood of names outside
// the domain cannot grow memory without bound.
const maxForwarding = 256

// udpServer serves the handler on one UDP socket bound to a single address
// (so no control messages are needed to answer from it). Its reader
// goroutine answers names of the domain inline, without a goroutine per
// query, and hands anything else, which may be forwarded upstream and
// wait, to a goroutine of its own (at most maxForwarding at once).
type udpServer struct {
	pc     *net.UDPConn
	h      *Handler
	local  *net.UDPAddr
	slots  chan struct{}
	wg     sync.WaitGroup
	bufs   sync.Pool
	domain string // ".weft.local.", lower case
}

func newUDPServer(pc *net.UDPConn, h *Handler) *udpServer {
	u := &udpServer{pc: pc, h: h, slots: make(chan struct{}, maxForwarding), domain: "." + h.Domain()}
	u.local, _ = pc.LocalAddr().(*net.UDPAddr)
	u.bufs.New = func() any { b := make([]byte, dns.MaxMsgSize); return &b }
	return u
}

// udpBatch is how many queries one read and one write system call carry
// at most (recvmmsg/sendmmsg): under load a wakeup finds several queries
// queued, and their answers leave together.
const udpBatch = 16

// serve reads queries until the socket is closed, then waits for the
// goroutines it started.
func (u *udpServer) serve() {
	defer u.wg.Wait()
	pc := ipv4.NewPacketConn(u.pc)
	in := make([]ipv4.Message, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, dns.MaxMsgSize)}
	}
	bw := &batchWriter{u: u, out: make([]ipv4.Message, udpBatch), bufs: make([][]byte, udpBatch)}
	for i := range bw.out {
		bw.bufs[i] = make([]byte, dns.MaxMsgSize)
		bw.out[i].Buffers = [][]byte{nil}
	}
	for {
		n, err := pc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP errors reported on the socket
		}
		for i := range n {
			from := addrPortOf(in[i].Addr)
			b := in[i].Buffers[0][:in[i].N]
			m := new(dns.Msg)
			if err := m.Unpack(b); err != nil {
				u.formErr(b, from)
				continue
			}
			if u.inline(m) {
				bw.to = from
				u.h.ServeDNS(bw, m)
				continue
			}
			select {
			case u.slots <- struct{}{}:
			default:
				continue // too many waiting upstream: drop
			}
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer func() { <-u.slots }()
				u.h.ServeDNS(&udpWriter{u: u, to: from}, m)
			}()
		}
		bw.flush(pc)
	}
}

// addrPortOf converts the source address of a received message.
func addrPortOf(a net.Addr) netip.AddrPort {
	if ua, ok := a.(*net.UDPAddr); ok {
		return ua.AddrPort()
	}
	return netip.AddrPort{}
}

// batchWriter is the dns.ResponseWriter of the queries answered inline:
// it packs each answer into a buffer of its own and sends them all with
// one WriteBatch after the read batch.
type batchWriter struct {
	u    *udpServer
	to   netip.AddrPort
	out  []ipv4.Message
	bufs [][]byte
	n    int
}

func (w *batchWriter) LocalAddr() net.Addr  { return w.u.local }
func (w *batchWriter) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(w.to) }

func (w *batchWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.PackBuffer(w.bufs[w.n])
	if err != nil {
		return err
	}
	return w.queue(b)
}

func (w *batchWriter) Write(b []byte) (int, error) {
	return len(b), w.queue(append(w.bufs[w.n][:0], b...))
}

func (w *batchWriter) queue(b []byte) error {
	w.out[w.n].Buffers[0] = b
	w.out[w.n].Addr = net.UDPAddrFromAddrPort(w.to)
	w.n++
	return nil
}

// flush sends the queued answers.
func (w *batchWriter) flush(pc *ipv4.PacketConn) {
	for off := 0; off < w.n; {
		k, err := pc.WriteBatch(w.out[off:w.n], 0)
		if err != nil {
			k++ // skip the answer the kernel refused
		}
		off += k
	}
	w.n = 0
}

func (w *batchWriter) Close() error        { return nil }
func (w *batchWriter) TsigStatus() error   { return nil }
func (w *batchWriter) TsigTimersOnly(bool) {}
func (w *batchWriter) Hijack()             {}

// inline reports whether m is answered from the store without waiting: a
// single question inside the domain (or malformed, which is answered at
// once).
func (u *udpServer) inline(m *dns.Msg) bool {
	if len(m.Question) != 1 || m.Response || m.Opcode != dns.OpcodeQuery {
		return true
	}
	name := m.Question[0].Name
	if len(name) < len(u.domain) {
		return false
	}
	suffix := name[len(name)-len(u.domain):]
	return suffix == u.domain || strings.EqualFold(suffix, u.domain)
}

// formErr answers a message that does not unpack with FORMERR, if it has a
// query's header at least; anything else is dropped.
func (u *udpServer) formErr(b []byte, to netip.AddrPort) {
	if len(b) < 12 || b[2]&0x80 != 0 {
		return
	}
	u.h.stats.queries.Add(1)
	u.h.stats.malformed.Add(1)
	var out [12]byte
	copy(out[:2], b[:2])
	out[2] = 0x80 | b[2]&0x78 // QR, the query's opcode
	out[3] = dns.RcodeFormatError
	u.pc.WriteToUDPAddrPort(out[:], to)
}

// udpWriter is the dns.ResponseWriter of one UDP query.
type udpWriter struct {
	u  *udpServer
	to netip.AddrPort
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.u.local }
func (w *udpWriter) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(w.to) }

func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	bp := w.u.bufs.Get().(*[]byte)
	defer w.u.bufs.Put(bp)
	b, err := m.PackBuffer(*bp)
	if err != nil {
		return err
	}
	_, err = w.u.pc.WriteToUDPAddrPort(b, w.to)
	return err
}

func (w *udpWriter) Write(b []byte) (int, error) { return w.u.pc.WriteToUDPAddrPort(b, w.to) }
func (w *udpWriter) Close() error                { return nil }
func (w *udpWriter) TsigStatus() error           { return nil }
func (w *udpWriter) TsigTimersOnly(bool)         {}
func (w *udpWriter) Hijack()                     {}
