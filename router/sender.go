package router

import (
	"net/netip"

	"github.com/weftnet/weft/mesh"
)

// sender aggregates outgoing records into datagrams, one open datagram per
// next hop, and sends all datagrams of a batch with one WriteBatch. Each
// goroutine that sends owns one sender and its buffers.
type sender struct {
	r       *Router
	st      *counters
	max     int      // datagrams per WriteBatch; 0 means unbounded
	backing [][]byte // MaxDatagram-sized buffers, grown lazily, reused
	dgrams  []Datagram
	lens    []int // bytes used in each datagram, excluding the tag
	open    []openDgram
	failed  []int // indexes of datagrams WriteBatch rejected in the last flush
	records uint64
}

// openDgram is the datagram of one next hop that still takes records.
type openDgram struct {
	c     *conn
	idx   int // index into dgrams
	limit int // largest datagram towards c, tag included
}

func newSender(r *Router, st *counters, max int) sender {
	return sender{r: r, st: st, max: max}
}

// record appends a frame record towards connection c. The frame must fit
// c's MTU (len(frame) <= MTU + EthernetHeaderLen).
func (s *sender) record(c *conn, src, dst mesh.PeerName, frame []byte) {
	need := RecordHeaderLen + len(frame)
	o := -1
	for i := range s.open {
		if s.open[i].c == c {
			o = i
			break
		}
	}
	if o >= 0 {
		od := &s.open[o]
		if s.lens[od.idx]+need+TagLen <= od.limit {
			s.put(od.idx, src, dst, frame)
			return
		}
	}
	if s.max > 0 && len(s.dgrams) >= s.max {
		s.flush()
		o = -1
	}
	addr := c.addr.Load()
	if addr == nil {
		s.st.drops[dropNoRoute].Add(1)
		return
	}
	idx := s.begin(*addr)
	PutHeader(s.backing[idx], Header{Type: TypeFrames, Sender: s.r.self, Counter: c.counter.Add(1)})
	s.lens[idx] = HeaderLen
	od := openDgram{c: c, idx: idx, limit: int(c.mtu.Load()) + FrameOverhead}
	if o >= 0 {
		s.open[o] = od
	} else {
		s.open = append(s.open, od)
	}
	s.put(idx, src, dst, frame)
}

func (s *sender) put(idx int, src, dst mesh.PeerName, frame []byte) {
	n := s.lens[idx]
	s.lens[idx] = n + PutRecord(s.backing[idx][n:], RecordFrame, src, dst, frame)
	s.records++
}

// begin adds an empty datagram to addr and returns its index.
func (s *sender) begin(addr netip.AddrPort) int {
	i := len(s.dgrams)
	if i == len(s.backing) {
		s.backing = append(s.backing, make([]byte, MaxDatagram))
	}
	s.dgrams = append(s.dgrams, Datagram{Addr: addr})
	s.lens = append(s.lens, 0)
	return i
}

// control adds a whole datagram to addr that the caller writes into the
// returned buffer and ends with commit. It returns the datagram's index.
func (s *sender) control(addr netip.AddrPort) ([]byte, int) {
	if s.max > 0 && len(s.dgrams) >= s.max {
		s.flush()
	}
	i := s.begin(addr)
	return s.backing[i], i
}

// commit sets the length of the control datagram i, tag included.
func (s *sender) commit(i, n int) {
	s.lens[i] = n - TagLen
}

// flush ends every datagram with its tag and sends them all.
func (s *sender) flush() {
	s.failed = s.failed[:0]
	if len(s.dgrams) == 0 {
		return
	}
	for i := range s.dgrams {
		n := s.lens[i]
		PutTag(s.backing[i][n:])
		s.dgrams[i].Buf = s.backing[i][:n+TagLen]
	}
	var bytes, sent uint64
	d := s.dgrams
	for off := 0; off < len(d); {
		n, err := s.r.cfg.Transport.WriteBatch(d[off:])
		for _, x := range d[off : off+n] {
			bytes += uint64(len(x.Buf))
		}
		off += n
		sent += uint64(n)
		if err != nil {
			if off < len(d) {
				s.failed = append(s.failed, off)
				s.st.drops[dropSendError].Add(1)
				off++
			}
			continue
		}
		if n == 0 {
			break
		}
	}
	s.st.udpOut.Add(sent)
	s.st.udpBytesOut.Add(bytes)
	s.st.recordsOut.Add(s.records)
	s.records = 0
	for i := range s.dgrams {
		s.dgrams[i] = Datagram{}
	}
	s.dgrams = s.dgrams[:0]
	s.lens = s.lens[:0]
	clear(s.open)
	s.open = s.open[:0]
}
