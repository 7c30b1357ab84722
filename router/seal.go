package router

import (
	"encoding/binary"
	"time"

	"github.com/weftnet/weft/secure"
)

// Sealing and opening of datagrams on connections with data keys
// (mesh.OverlayConnectionParams.Keys). The layout does not change: the
// header is the AEAD's additional data, with FlagSealed, the key id and
// the key ring's counter in it; the body is encrypted in place and the
// tag fills the trailing tag room. docs/protocol-data.md has the details.

// sealState is a sender's per-batch bookkeeping for sealing: the
// connection each datagram goes to, and which datagrams were sent.
type sealState struct {
	conns []*conn // connection of each datagram of the batch; nil while unknown
	kept  []int   // index in the batch of each datagram handed to the transport
}

// noteOpen records the connection of every open frames datagram. begin
// calls it before the new datagram can take an open one's place in the
// open table, and flush before sealing, so every frames datagram of the
// batch has its connection noted. Cost: one pass over the open table,
// which holds one entry per next hop of the batch.
func (s *sender) noteOpen() {
	for _, od := range s.open {
		s.seal.conns[od.idx] = od.c
	}
}

// finishDatagrams ends every datagram of the batch with its tag: sealed
// under its connection's data keys when it has them, else a zero tag.
// Datagrams that cannot be sealed, and datagrams whose connection is
// unknown (whether they needed sealing cannot be told), are dropped and
// counted. It returns the datagrams to send, compacted at the front of
// s.dgrams; s.seal.kept maps their positions back to batch indexes.
func (s *sender) finishDatagrams() []Datagram {
	s.noteOpen()
	var now time.Time
	j := 0
	for i := range s.dgrams {
		n, b, c := s.lens[i], s.backing[i], s.seal.conns[i]
		switch {
		case c == nil:
			s.st.drops[dropSealFailed].Add(1)
			continue
		case c.keys != nil:
			if now.IsZero() {
				now = s.r.cfg.Now() // one clock reading per batch
			}
			if sealTrain(c.keys, b[:n+TagLen], s.dgrams[i].Segment, now) != nil {
				s.st.drops[dropSealFailed].Add(1)
				c.pc.drops[peerDropSealFailed].Add(1)
				continue
			}
		default:
			PutTag(b[n:])
		}
		c.pc.countTx(n+TagLen, s.dgrams[i].Segment)
		s.dgrams[j] = Datagram{Buf: b[:n+TagLen], Addr: s.dgrams[i].Addr, Segment: s.dgrams[i].Segment}
		s.seal.kept = append(s.seal.kept, i)
		j++
	}
	return s.dgrams[:j]
}

// resetSeal forgets the batch's connections.
func (s *sender) resetSeal() {
	clear(s.seal.conns)
	s.seal.conns = s.seal.conns[:0]
	s.seal.kept = s.seal.kept[:0]
}

// sealTrain seals the datagram in b (header, body and tag room) or, when
// seg is not zero, each datagram of the train in b: seg bytes each but
// the last (Datagram.Segment). Every datagram of a train has its own
// header and counter, and is opened on its own by the receiver.
func sealTrain(ring *secure.KeyRing, b []byte, seg int, now time.Time) error {
	if seg <= 0 {
		seg = len(b)
	}
	for pos := 0; pos < len(b); pos += seg {
		end := min(pos+seg, len(b))
		if end-pos < DatagramOverhead {
			return ErrShortDatagram
		}
		if err := sealDatagram(ring, b[pos:end], end-pos-TagLen, now); err != nil {
			return err
		}
	}
	return nil
}

// sealDatagram seals the datagram in b, whose header and body take n
// bytes, in place under a fresh counter of ring; the tag goes to
// b[n:n+TagLen]. The header's flags, key id and counter are rewritten
// before sealing, since the header is authenticated.
func sealDatagram(ring *secure.KeyRing, b []byte, n int, now time.Time) error {
	sl, ctr, err := ring.Reserve(now)
	if err != nil {
		return err
	}
	b[2] |= FlagSealed
	b[3] = sl.KeyID()
	binary.BigEndian.PutUint64(b[12:HeaderLen], ctr)
	_, err = sl.Seal(ctr, b[:HeaderLen], b[HeaderLen:n:n+TagLen])
	return err
}

// open returns the plain body of datagram b from connection c, whose
// header h and body ParseHeader returned: body itself on a connection
// without data keys, else the body authenticated and decrypted in place.
// It reports false for a datagram to drop, counted by reason: a sealed
// datagram without keys, a plain one with keys (the flag is
// authenticated, so it cannot be stripped), a forged, replayed or
// unknown-key one. Nothing is logged per datagram.
func (u *udpReader) open(c *conn, h Header, b, body []byte) ([]byte, bool) {
	sealed := h.Flags&FlagSealed != 0
	if c.keys == nil || !sealed {
		if c.keys != nil || sealed {
			u.st.drops[dropUnsealed].Add(1)
			c.pc.drops[peerDropUnsealed].Add(1)
			return nil, false
		}
		return body, true
	}
	out, err := c.keys.Open(h.KeyID, h.Counter, b[:HeaderLen], b[HeaderLen:], time.Unix(0, u.now))
	switch err {
	case nil:
		return out, true
	case secure.ErrReplay:
		u.st.drops[dropReplay].Add(1)
		c.pc.drops[peerDropReplay].Add(1)
	case secure.ErrUnknownKey, secure.ErrExpiredKey:
		u.st.drops[dropUnknownKey].Add(1)
		c.pc.drops[peerDropUnknownKey].Add(1)
	default: // ErrForged, ErrShortDatagram, a failed ratchet step
		u.st.drops[dropAuthFailed].Add(1)
		c.pc.drops[peerDropAuthFailed].Add(1)
	}
	return nil, false
}
