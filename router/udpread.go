package router

import "github.com/weftnet/weft/mesh"

// udpReader is the goroutine reading datagrams from the transport.
type udpReader struct {
	forwarder
	dgrams []Datagram
}

func newUDPReader(r *Router) *udpReader {
	n := r.cfg.BatchSize
	u := &udpReader{
		forwarder: newForwarder(r, r.udpStats, n),
		dgrams:    make([]Datagram, n),
	}
	for i := range u.dgrams {
		u.dgrams[i].Buf = make([]byte, MaxDatagram)
	}
	return u
}

// run reads batches until the transport is closed or keeps failing.
func (u *udpReader) run() error {
	var errs errorRun
	for {
		n, err := u.r.cfg.Transport.ReadBatch(u.dgrams)
		if n > 0 {
			u.handle(n)
		}
		if err := errs.check(u.r, "read transport", err); err != nil {
			return err
		}
	}
}

// handle processes the first n datagrams received.
func (u *udpReader) handle(n int) {
	u.begin()
	var bytes uint64
	for i := range n {
		d := &u.dgrams[i]
		b := d.Buf[:d.N]
		bytes += uint64(len(b))
		u.datagram(b, d)
	}
	u.st.udpIn.Add(uint64(n))
	u.st.udpBytesIn.Add(bytes)
	u.finish()
}

// datagram handles one datagram from its sending connection.
func (u *udpReader) datagram(b []byte, d *Datagram) {
	h, body, err := ParseHeader(b)
	if err != nil || h.Flags&FlagSealed != 0 {
		u.st.drops[dropBadDatagram].Add(1)
		return
	}
	c := u.conns[h.Sender]
	if c == nil {
		u.st.drops[dropUnknownSender].Add(1)
		return
	}
	switch h.Type {
	case TypeFrames:
		u.frames(body)
	case TypeHeartbeat:
		if !c.gotHeartbeat(body, d.Addr, u.now) {
			u.st.drops[dropBadDatagram].Add(1)
		}
	case TypeProbe:
		uid, id, err := parseProbe(body)
		if err != nil || uid != c.uid {
			u.st.drops[dropBadDatagram].Add(1)
			return
		}
		buf, i := u.out.control(d.Addr)
		u.out.commit(i, putProbeAck(buf, u.r.self, c.counter.Add(1), c.uid, id, len(b)))
	case TypeProbeAck:
		uid, id, _, err := parseProbeAck(body)
		if err != nil || uid != c.uid {
			u.st.drops[dropBadDatagram].Add(1)
			return
		}
		c.probeAck.Store(id)
		u.r.wake()
	default:
		u.st.drops[dropBadDatagram].Add(1)
	}
}

// frames handles the records of a frames datagram.
func (u *udpReader) frames(body []byte) {
	self := u.r.self
	var records, relayed uint64
	for off := 0; off < len(body); {
		rec, n, err := ParseRecord(body[off:])
		if err != nil {
			u.st.drops[dropBadDatagram].Add(1)
			break
		}
		whole := body[off : off+n]
		off += n
		records++
		if rec.Type != RecordFrame {
			u.st.drops[dropBadDatagram].Add(1)
			continue
		}
		if rec.Src == self {
			u.st.drops[dropLoop].Add(1)
			continue
		}
		fr := rec.Frame
		switch rec.Dst {
		case self:
			if u.learnSrc(rec.Src, fr) {
				u.local = append(u.local, whole)
			}
		case BroadcastPeer:
			if !u.learnSrc(rec.Src, fr) {
				continue
			}
			u.local = append(u.local, whole)
			if fr[0]&1 == 0 {
				if owner, ok := u.lookup(fr[0:6]); ok && owner == self {
					continue // flooded unicast that found its destination here
				}
			}
			u.broadcast(rec.Src, fr, false)
		default:
			relayed++
			if !u.unicast(rec.Src, rec.Dst, fr, false) {
				u.st.drops[dropNoRoute].Add(1)
			}
		}
	}
	u.st.recordsIn.Add(records)
	u.st.relayed.Add(relayed)
}

// learnSrc records the frame's source MAC behind peer src and reports
// whether the frame should be delivered (false: dropped as looping).
func (u *udpReader) learnSrc(src mesh.PeerName, fr []byte) bool {
	if fr[6]&1 != 0 {
		u.st.drops[dropBadFrame].Add(1)
		return false
	}
	if u.learn(fr[6:12], src) == learnLoop {
		u.st.drops[dropLoop].Add(1)
		return false
	}
	return true
}
