package router

import (
	"context"
	"errors"
	"log/slog"
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
	failed  []int      // indexes of datagrams WriteBatch rejected in the last flush
	singles []Datagram // a refused train's datagrams, sent one by one
	records uint64
	stream  uint8  // tells this sender's segments apart from other senders'
	nextID  uint32 // id of the last frame sent in segments

	seal sealState // connection of each datagram, for sealing (seal.go)
}

// openDgram is the datagram of one next hop that still takes records.
type openDgram struct {
	c     *conn
	idx   int // index into dgrams
	limit int // largest datagram towards c, tag included
}

func newSender(r *Router, st *counters, max int) sender {
	return sender{r: r, st: st, max: max, stream: uint8(r.streams.Add(1))}
}

// record appends a frame record towards connection c. The frame must fit
// c's MTU (len(frame) <= MTU + EthernetHeaderLen).
func (s *sender) record(c *conn, src, dst mesh.PeerName, frame []byte) {
	if idx := s.slot(c, RecordHeaderLen+len(frame), false); idx >= 0 {
		s.put(idx, src, dst, frame)
		c.pc.txFrames.Add(1)
	}
}

// recordVnet appends a frame and its virtio-net header towards c: as one
// RecordVnet record when it fits a datagram to c, else as RecordSegment
// records of one datagram each.
func (s *sender) recordVnet(c *conn, src, dst mesh.PeerName, hdr, frame []byte) {
	c.pc.txFrames.Add(1)
	total := VnetHdrLen + len(frame)
	limit := int(c.mtu.Load()) + FrameOverhead
	if RecordHeaderLen+total <= limit-HeaderLen-TagLen {
		if idx := s.slot(c, RecordHeaderLen+total, false); idx >= 0 {
			n := s.lens[idx]
			s.lens[idx] = n + putVnetRecord(s.backing[idx][n:], src, dst, hdr, frame)
			s.records++
		}
		return
	}
	room := limit - HeaderLen - TagLen - RecordHeaderLen - segmentHeaderLen
	s.nextID++
	if s.trains(c, src, dst, hdr, frame, limit, room) {
		s.records++
		return
	}
	for off := 0; off < total; off += room {
		end := min(off+room, total)
		idx := s.slot(c, RecordHeaderLen+segmentHeaderLen+end-off, true)
		if idx < 0 {
			return
		}
		s.lens[idx] += putSegment(s.backing[idx][s.lens[idx]:], s.stream, src, dst, s.nextID, hdr, frame, off, end)
	}
	s.records++
}

// trains sends the segments of a header+frame blob as trains of
// equal-sized datagrams (each limit bytes but the last) that the
// transport sends with one segmentation offload call each. It reports
// false, having done nothing, when the transport cannot.
func (s *sender) trains(c *conn, src, dst mesh.PeerName, hdr, frame []byte, limit, room int) bool {
	maxSeg := 0
	if s.r.segmenter != nil {
		maxSeg = min(s.r.segmenter.MaxSegments(), trainSegments, MaxDatagram/limit)
	}
	if maxSeg < 2 || !s.trainsTo(c) {
		return false
	}
	total := VnetHdrLen + len(frame)
	for off := 0; off < total; {
		idx := s.train(c)
		if idx < 0 {
			return true
		}
		b := s.backing[idx]
		pos := 0
		// One atomic add reserves the counters of the whole train
		// rather than one per datagram.
		n := min(maxSeg, (total-off+room-1)/room)
		counter := c.counter.Add(uint64(n)) - uint64(n)
		for range n {
			end := min(off+room, total)
			counter++
			PutHeader(b[pos:], Header{Type: TypeFrames, Sender: s.r.self, Counter: counter})
			pos += HeaderLen + putSegment(b[pos+HeaderLen:], s.stream, src, dst, s.nextID, hdr, frame, off, end)
			PutTag(b[pos:])
			pos += TagLen
			off = end
		}
		// flush adds the last datagram's tag at lens[idx] again.
		s.lens[idx] = pos - TagLen
		s.dgrams[idx].Segment = limit
	}
	return true
}

// trainsTo reports whether c's path takes trains: not while a refusal
// (refused) holds, and again once its TrainRetry is over.
func (s *sender) trainsTo(c *conn) bool {
	until := c.noTrains.Load()
	if until == 0 {
		return true
	}
	if s.r.cfg.Now().UnixNano() < until {
		return false
	}
	c.noTrains.CompareAndSwap(until, 0)
	return true
}

// refused handles train d to connection c, which the transport refused
// (ErrTrainRefused) because its path cannot segment: it sends the train's
// datagrams one by one instead and keeps trains from c for TrainRetry.
func (s *sender) refused(c *conn, d Datagram) {
	s.st.trainsRefused.Add(1)
	if c.noTrains.Swap(s.r.cfg.Now().Add(s.r.cfg.TrainRetry).UnixNano()) == 0 {
		level := slog.LevelInfo
		if c.trainsLogged.Swap(true) {
			level = slog.LevelDebug // said once per connection; retries are routine
		}
		s.r.log.Log(context.Background(), level, "path refuses UDP segmentation offload: sending datagram by datagram",
			"peer", c.peer, "retry_in", s.r.cfg.TrainRetry)
	}
	s.singles = s.singles[:0]
	for pos := 0; pos < len(d.Buf); pos += d.Segment {
		s.singles = append(s.singles, Datagram{Buf: d.Buf[pos:min(pos+d.Segment, len(d.Buf))], Addr: d.Addr})
	}
	s.write(s.singles, s.dropRejected)
	clear(s.singles)
}

// write sends d with as few WriteBatch calls as the transport allows. A
// datagram the transport rejects is handed to rejected with the error,
// then skipped. Datagrams and bytes sent are counted.
func (s *sender) write(d []Datagram, rejected func(i int, err error)) {
	var bytes, sent uint64
	for off := 0; off < len(d); {
		n, err := s.r.cfg.Transport.WriteBatch(d[off:])
		for _, x := range d[off : off+n] {
			bytes += uint64(len(x.Buf))
		}
		off += n
		sent += uint64(n)
		if err != nil {
			if off < len(d) {
				rejected(off, err)
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
}

// dropRejected counts a datagram the transport rejected.
func (s *sender) dropRejected(int, error) { s.st.drops[dropSendError].Add(1) }

// flushRejected handles datagram i of the batch flush sends, which the
// transport rejected: a refused train goes again datagram by datagram;
// anything else is counted and noted in failed.
func (s *sender) flushRejected(i int, err error) {
	if d := s.dgrams[i]; d.Segment > 0 && errors.Is(err, ErrTrainRefused) {
		s.refused(s.seal.conns[s.seal.kept[i]], d)
		return
	}
	s.failed = append(s.failed, s.seal.kept[i])
	s.st.drops[dropSendError].Add(1)
}

// train adds a datagram towards c that is not open for further records
// and returns its index, or -1 (counted) while c's address is unknown.
func (s *sender) train(c *conn) int {
	if s.max > 0 && len(s.dgrams) >= s.max {
		s.flush()
	}
	addr := c.addr.Load()
	if addr == nil {
		s.st.drops[dropNoRoute].Add(1)
		return -1
	}
	i := s.begin(*addr)
	s.seal.conns[i] = c
	return i
}

// slot returns the index of a datagram towards c with need bytes free for
// a record: c's open datagram when it has room (and fresh is false), else
// a new one that becomes c's open datagram. It returns -1, counted as no
// route, while c's address is unknown.
func (s *sender) slot(c *conn, need int, fresh bool) int {
	o := -1
	for i := range s.open {
		if s.open[i].c == c {
			o = i
			break
		}
	}
	if o >= 0 && !fresh {
		od := &s.open[o]
		if s.lens[od.idx]+need+TagLen <= od.limit {
			return od.idx
		}
	}
	if s.max > 0 && len(s.dgrams) >= s.max {
		s.flush()
		o = -1
	}
	addr := c.addr.Load()
	if addr == nil {
		s.st.drops[dropNoRoute].Add(1)
		return -1
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
	return idx
}

func (s *sender) put(idx int, src, dst mesh.PeerName, frame []byte) {
	n := s.lens[idx]
	s.lens[idx] = n + PutRecord(s.backing[idx][n:], RecordFrame, src, dst, frame)
	s.records++
}

// begin adds an empty datagram to addr and returns its index. Its
// connection is unknown until control sets it or the datagram is found in
// the open table (noteOpen); flush drops datagrams whose connection stays
// unknown, since it cannot tell whether they need sealing.
func (s *sender) begin(addr netip.AddrPort) int {
	s.noteOpen() // the new datagram may replace an open one
	s.seal.conns = append(s.seal.conns, nil)
	i := len(s.dgrams)
	if i == len(s.backing) {
		s.backing = append(s.backing, make([]byte, MaxDatagram))
	}
	s.dgrams = append(s.dgrams, Datagram{Addr: addr})
	s.lens = append(s.lens, 0)
	return i
}

// control adds a whole datagram of connection c to addr that the caller
// writes into the returned buffer and ends with commit. It returns the
// datagram's index. flush seals it when c has data keys.
func (s *sender) control(c *conn, addr netip.AddrPort) ([]byte, int) {
	if s.max > 0 && len(s.dgrams) >= s.max {
		s.flush()
	}
	i := s.begin(addr)
	s.seal.conns[i] = c
	return s.backing[i], i
}

// commit sets the length of the control datagram i, tag included.
func (s *sender) commit(i, n int) {
	s.lens[i] = n - TagLen
}

// flush ends every datagram with its tag, sealing those of connections
// with data keys, and sends them all.
func (s *sender) flush() {
	s.failed = s.failed[:0]
	if len(s.dgrams) == 0 {
		return
	}
	s.write(s.finishDatagrams(), s.flushRejected)
	s.st.recordsOut.Add(s.records)
	s.records = 0
	for i := range s.dgrams {
		s.dgrams[i] = Datagram{}
	}
	s.dgrams = s.dgrams[:0]
	s.lens = s.lens[:0]
	s.resetSeal()
	clear(s.open)
	s.open = s.open[:0]
}
