package router

import (
	"encoding/binary"

	"github.com/weftnet/weft/mesh"
)

// udpReader is the goroutine reading datagrams from the transport, or
// from one socket of a MultiSocket transport.
type udpReader struct {
	forwarder
	tr     Transport
	dgrams []Datagram

	reasm []reassembly // frames being put back together, by sender
	free  [][]byte     // reassembly buffers not in use
	busy  [][]byte     // reassembly buffers queued for the device
}

func newUDPReader(r *Router, tr Transport) *udpReader {
	n := r.cfg.BatchSize
	u := &udpReader{
		forwarder: newForwarder(r, r.udpStats, n),
		tr:        tr,
		dgrams:    make([]Datagram, n),
	}
	for i := range u.dgrams {
		// Room for a coalesced train, which may be a little longer
		// than the largest single datagram.
		u.dgrams[i].Buf = make([]byte, 65535)
	}
	return u
}

// run reads batches until the transport is closed or keeps failing.
func (u *udpReader) run() error {
	var errs errorRun
	for {
		n, err := u.tr.ReadBatch(u.dgrams)
		if n > 0 {
			u.handle(n)
		}
		if err := errs.check(u.r, "read transport", err); err != nil {
			return err
		}
	}
}

// handle processes the first n messages received: single datagrams, or
// trains of datagrams the transport coalesced.
func (u *udpReader) handle(n int) {
	u.begin()
	var bytes, count uint64
	for i := range n {
		d := &u.dgrams[i]
		b := d.Buf[:d.N]
		bytes += uint64(len(b))
		if d.N == 0 {
			u.st.drops[dropBadDatagram].Add(1)
			continue
		}
		seg := d.Segment
		if seg <= 0 {
			seg = len(b)
		}
		for len(b) > 0 {
			k := min(seg, len(b))
			u.datagram(b[:k:k], d)
			b = b[k:]
			count++
		}
	}
	u.st.udpIn.Add(count)
	u.st.udpBytesIn.Add(bytes)
	u.finish()
	u.free = append(u.free, u.busy...)
	clear(u.busy)
	u.busy = u.busy[:0]
}

// datagram handles one datagram from its sending connection.
func (u *udpReader) datagram(b []byte, d *Datagram) {
	h, body, err := ParseHeader(b)
	if err != nil {
		u.st.drops[dropBadDatagram].Add(1)
		return
	}
	c := u.conns[h.Sender]
	if c == nil {
		u.st.drops[dropUnknownSender].Add(1)
		return
	}
	if c.keys == nil && !c.fromPeer(d.Addr, h.Type) {
		u.st.drops[dropUnknownSender].Add(1)
		if h.Type == TypeHeartbeat && h.Flags&FlagSealed == 0 {
			if nonce, ok := c.challengeFrom(body, d.Addr, u.now); ok {
				buf, i := u.out.control(c, d.Addr)
				u.out.commit(i, putPathChallenge(buf, u.r.self, c.counter.Add(1), c.uid, nonce))
			}
		}
		return
	}
	body, ok := u.open(c, h, b, body)
	if !ok {
		return
	}
	c.pc.rxDatagrams.Add(1)
	c.pc.rxBytes.Add(uint64(len(b)))
	switch h.Type {
	case TypeFrames:
		c.pc.rxFrames.Add(u.frames(h.Sender, body))
	case TypeHeartbeat:
		if !c.gotHeartbeat(body, d.Addr, u.now) {
			u.st.drops[dropBadDatagram].Add(1)
		}
	case TypePathChallenge:
		if c.keys != nil || !c.gotChallenge(body) {
			u.st.drops[dropBadDatagram].Add(1)
		}
	case TypeProbe:
		uid, id, err := parseProbe(body)
		if err != nil || uid != c.uid {
			u.st.drops[dropBadDatagram].Add(1)
			return
		}
		buf, i := u.out.control(c, d.Addr)
		u.out.commit(i, putProbeAck(buf, u.r.self, c.counter.Add(1), c.uid, id, len(b)))
	case TypeProbeAck:
		uid, id, _, err := parseProbeAck(body)
		if err != nil || uid != c.uid {
			u.st.drops[dropBadDatagram].Add(1)
			return
		}
		c.probeAcked(id, u.now)
		if id&1 == 1 {
			c.probeAck.Store(id)
		} else {
			c.probeAckCtl.Store(id)
		}
		u.r.wake()
	default:
		u.st.drops[dropBadDatagram].Add(1)
	}
}

// frames handles the records of a frames datagram that neighbour from
// sent and returns how many frames it held: whole frames, and the first
// segments of frames cut into segments.
func (u *udpReader) frames(from mesh.PeerName, body []byte) uint64 {
	var records, frames uint64
	for off := 0; off < len(body); {
		rec, n, err := ParseRecord(body[off:])
		if err != nil {
			u.st.drops[dropBadDatagram].Add(1)
			break
		}
		whole := body[off : off+n]
		off += n
		records++
		switch rec.Type {
		case RecordFrame:
			frames++
			u.frame(rec.Src, rec.Dst, rec.Frame, whole, false)
		case RecordVnet:
			frames++
			// whole[VnetHdrLen:] puts the header just before the frame,
			// RecordHeaderLen bytes in, as the device expects.
			u.vhdr = rec.Frame[:VnetHdrLen]
			u.frame(rec.Src, rec.Dst, rec.Frame[VnetHdrLen:], whole[VnetHdrLen:], true)
			u.vhdr = nil
		case RecordSegment:
			if len(rec.Frame) >= 8 && binary.BigEndian.Uint32(rec.Frame[4:8]) == 0 {
				frames++ // the first piece
			}
			u.segment(from, rec)
		case RecordPing, RecordPong:
			u.ping(from, rec)
		default:
			u.st.drops[dropBadDatagram].Add(1)
		}
	}
	u.st.recordsIn.Add(records)
	return frames
}

// frame delivers, relays or floods one frame from peer src to peer dst.
// entry is what goes to the device: the frame after RecordHeaderLen bytes
// of headroom, which for a frame with a virtio-net header (vnet) holds
// the header in its last VnetHdrLen bytes.
func (u *udpReader) frame(src, dst mesh.PeerName, fr, entry []byte, vnet bool) {
	self := u.r.self
	if src == self {
		u.st.drops[dropLoop].Add(1)
		return
	}
	switch dst {
	case self:
		if u.learnSrc(src, fr) {
			u.deliver(entry, vnet)
		}
	case BroadcastPeer:
		if !u.learnSrc(src, fr) {
			return
		}
		// Relay before delivering: delivery may complete a checksum in
		// place for a device without offloads.
		if fr[0]&1 != 0 {
			u.broadcast(src, fr, false)
		} else if owner, ok := u.lookup(fr[0:6]); !ok || owner != self {
			u.broadcast(src, fr, false)
		} // else a flooded unicast that found its destination here
		u.deliver(entry, vnet)
	default:
		u.st.relayed.Add(1)
		if !u.unicast(src, dst, fr, false) {
			u.st.drops[dropNoRoute].Add(1)
		}
	}
}

func (u *udpReader) deliver(entry []byte, vnet bool) {
	if vnet {
		u.deliverVnet(entry)
	} else {
		u.deliverPlain(entry)
	}
}

// reassembly puts back together the segments of one frame that one
// sender (a neighbour's goroutine) cut up. Segments of a frame arrive in
// order on a path that does not reorder; anything else loses the frame,
// as a lost datagram would.
type reassembly struct {
	from   mesh.PeerName
	stream uint8
	id     uint32
	total  int
	got    int
	buf    []byte // the frame at RecordHeaderLen, its header just before
}

// reasmBase is where the header+frame blob starts in a reassembly buffer.
const reasmBase = RecordHeaderLen - VnetHdrLen

// maxReassemblies bounds the frames being reassembled at once.
const maxReassemblies = 64

// segment adds one RecordSegment to its frame and handles the frame once
// complete.
func (u *udpReader) segment(from mesh.PeerName, rec Record) {
	sg, ok := parseSegment(rec.Frame)
	if !ok {
		u.st.drops[dropBadDatagram].Add(1)
		return
	}
	ra := u.reassemblyFor(from, rec.Flags)
	if sg.off == 0 {
		if ra.got > 0 {
			u.st.drops[dropReassembly].Add(1)
		}
		ra.id, ra.total, ra.got = sg.id, sg.total, 0
	}
	if sg.id != ra.id || sg.total != ra.total || sg.off != ra.got {
		if ra.got > 0 {
			u.st.drops[dropReassembly].Add(1)
		}
		ra.got, ra.total = 0, 0
		return
	}
	copy(ra.buf[reasmBase+sg.off:], sg.data)
	ra.got += len(sg.data)
	if ra.got < ra.total {
		return
	}
	blob := ra.buf[reasmBase : reasmBase+ra.total]
	fr := blob[VnetHdrLen:]
	before := len(u.local)
	u.vhdr = blob[:VnetHdrLen]
	u.frame(rec.Src, rec.Dst, fr, ra.buf[:RecordHeaderLen+len(fr)], true)
	u.vhdr = nil
	if len(u.local) > before {
		// The device write at the end of the batch still needs this buffer.
		u.busy = append(u.busy, ra.buf)
		ra.buf = u.takeBuf()
	}
	ra.got, ra.total = 0, 0
}

// reassemblyFor returns the reassembly of frames from one neighbour's
// sender, creating it on first use.
func (u *udpReader) reassemblyFor(from mesh.PeerName, stream uint8) *reassembly {
	for i := range u.reasm {
		if ra := &u.reasm[i]; ra.from == from && ra.stream == stream {
			return ra
		}
	}
	if len(u.reasm) == maxReassemblies {
		u.reasm = u.reasm[:0] // a flood of senders: start over
	}
	u.reasm = append(u.reasm, reassembly{from: from, stream: stream, buf: u.takeBuf()})
	return &u.reasm[len(u.reasm)-1]
}

// takeBuf returns a free reassembly buffer.
func (u *udpReader) takeBuf() []byte {
	if n := len(u.free); n > 0 {
		b := u.free[n-1]
		u.free = u.free[:n-1]
		return b
	}
	return make([]byte, reasmBase+maxBlob)
}

// learnSrc records the frame's source MAC behind peer src and reports
// whether the frame should be delivered (false: dropped as looping).
func (u *udpReader) learnSrc(src mesh.PeerName, fr []byte) bool {
	if fr[6]&1 != 0 {
		u.st.drops[dropBadFrame].Add(1)
		return false
	}
	switch u.learn(fr[6:12], src) {
	case learnLoop:
		u.st.drops[dropLoop].Add(1)
		return false
	case learnMoved:
		u.noteMoved(fr[6:12], src)
	}
	return true
}
