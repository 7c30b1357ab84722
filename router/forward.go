package router

import (
	"github.com/weftnet/weft/mesh"
)

// forwarder is the per-goroutine state both readers share the code of:
// the snapshots loaded for the current batch, the datagrams being built
// and the frames to write to the device.
type forwarder struct {
	r       *Router
	st      *counters
	out     sender
	routes  *mesh.Routes // snapshot for the current batch
	conns   connMap      // snapshot for the current batch
	now     int64        // unix nanoseconds at the start of the batch
	scratch []byte       // one fragment or ICMP error at a time

	// local holds frames for Device.Write, each with RecordHeaderLen bytes
	// of headroom in front.
	local    [][]byte
	icmpBufs [][]byte // backing of synthesized ICMP errors, reused
	nICMP    int
	segBufs  [][]byte // backing of segments cut from super-frames, reused
	nSeg     int
	segLen   int // largest segment frame the device takes (Ethernet header + MTU)

	newMACs []macPending // MACs first seen in this batch

	// vhdr is the virtio-net header of the frame being forwarded, nil for
	// a plain frame; forward sends frames with one as RecordVnet/Segment.
	vhdr []byte

	// One-entry caches for the current batch: frames of a batch mostly
	// share their source and destination, so learning and lookup skip
	// the table for repeats.
	lastSrc      uint64
	lastSrcOwner mesh.PeerName
	lastSrcOK    bool
	lastDst      uint64
	lastDstOwner mesh.PeerName
	lastDstFound bool
	lastDstOK    bool
	lastMiss     uint64 // destination of the last miss reported (noteMiss)
	missOK       bool
}

// icmpBufLen holds an ICMP error frame: Ethernet, IP, ICMP header and a
// quoted IP header with options and 8 bytes of payload.
const icmpBufLen = RecordHeaderLen + EthernetHeaderLen + 20 + icmpHeaderLen + 60 + icmpQuoteData

func newForwarder(r *Router, st *counters, batch int) forwarder {
	return forwarder{
		r:       r,
		st:      st,
		out:     newSender(r, st, 2*batch),
		scratch: make([]byte, MaxDatagram),
		segLen:  EthernetHeaderLen + r.cfg.Device.MTU(),
		local:   make([][]byte, 0, batch),
	}
}

// begin loads the snapshots for a batch.
func (f *forwarder) begin() {
	f.routes = f.r.routes.Load()
	f.conns = *f.r.conns.Load()
	f.now = f.r.cfg.Now().UnixNano()
	f.lastSrcOK, f.lastDstOK, f.missOK = false, false, false
}

// learn observes a source MAC behind owner; new MACs are inserted when
// the batch finishes.
func (f *forwarder) learn(mac []byte, owner mesh.PeerName) learnResult {
	k := macKey(mac)
	if f.lastSrcOK && f.lastSrc == k && f.lastSrcOwner == owner {
		return learnKnown
	}
	res := f.r.macs.observe(k, owner, f.now, &f.newMACs)
	f.lastSrc, f.lastSrcOwner, f.lastSrcOK = k, owner, res != learnLoop
	return res
}

// lookup returns the owner of a destination MAC.
func (f *forwarder) lookup(mac []byte) (mesh.PeerName, bool) {
	k := macKey(mac)
	if !f.lastDstOK || f.lastDst != k {
		f.lastDstOwner, f.lastDstFound = f.r.macs.lookup(k)
		f.lastDst, f.lastDstOK = k, true
	}
	return f.lastDstOwner, f.lastDstFound
}

// finish inserts the batch's new MACs, sends its datagrams, then writes
// its local frames.
func (f *forwarder) finish() {
	if len(f.newMACs) > 0 {
		f.r.macs.insert(f.newMACs)
		f.newMACs = f.newMACs[:0]
	}
	f.out.flush()
	if len(f.local) > 0 {
		f.r.writeDevice(f.st, f.local, RecordHeaderLen)
		clear(f.local)
		f.local = f.local[:0]
	}
	f.nICMP = 0
	f.nSeg = 0
}

// connTo returns the connection to the neighbour hop, or nil.
func (f *forwarder) connTo(hop mesh.PeerName) *conn {
	c := f.conns[hop]
	if c == nil {
		f.st.drops[dropNoRoute].Add(1)
	}
	return c
}

// unicast sends a frame from src to peer dst along the unicast route. It
// reports false when there is no route.
func (f *forwarder) unicast(src, dst mesh.PeerName, frame []byte, captured bool) bool {
	hop, ok := f.routes.Unicast(dst)
	if !ok {
		return false
	}
	c := f.connTo(hop)
	if c == nil {
		return true // counted as no route
	}
	f.forward(c, src, dst, frame, captured)
	return true
}

// broadcast sends a frame along the broadcast tree of src.
func (f *forwarder) broadcast(src mesh.PeerName, frame []byte, captured bool) {
	for _, hop := range f.routes.Broadcast(src) {
		if c := f.connTo(hop); c != nil {
			f.forward(c, src, BroadcastPeer, frame, captured)
		}
	}
}

// forward sends one frame to the neighbour behind c. A frame too big for
// c's MTU is fragmented or answered with an ICMP error when it is IPv4,
// else dropped and counted. captured is true for frames read from our own
// device, whose ICMP errors go straight back into the device.
func (f *forwarder) forward(c *conn, src, dst mesh.PeerName, frame []byte, captured bool) {
	if f.vhdr != nil {
		// Cut into segments as the path needs: never too big.
		f.out.recordVnet(c, src, dst, f.vhdr, frame)
		return
	}
	mtu := int(c.mtu.Load())
	if len(frame)-EthernetHeaderLen <= mtu {
		f.out.record(c, src, dst, frame)
		return
	}
	info, err := parseIPv4(frame)
	if err != nil {
		f.st.drops[dropTooBig].Add(1)
		return
	}
	if info.df {
		f.st.drops[dropTooBig].Add(1)
		f.fragNeeded(src, dst, frame, info, mtu, captured)
		return
	}
	for off := 0; ; {
		n, next, err := FragmentIPv4(f.scratch, frame, mtu, off)
		if err != nil {
			f.st.drops[dropTooBig].Add(1)
			return
		}
		f.out.record(c, src, dst, f.scratch[:n])
		if next == 0 {
			break
		}
		off = next
	}
	f.st.fragmented.Add(1)
}

// fragNeeded answers a too-big IPv4 packet with DF set with an ICMP
// "fragmentation needed" error to its sender, unless the packet was
// multicast, broadcast or a non-first fragment.
func (f *forwarder) fragNeeded(src, dst mesh.PeerName, frame []byte, info ipv4Info, mtu int, captured bool) {
	if frame[0]&1 != 0 || info.fragOff != 0 {
		return
	}
	if captured {
		if f.nICMP == len(f.icmpBufs) {
			f.icmpBufs = append(f.icmpBufs, make([]byte, icmpBufLen))
		}
		buf := f.icmpBufs[f.nICMP]
		n, err := FragNeeded(buf[RecordHeaderLen:], frame, mtu)
		if err != nil {
			return
		}
		f.nICMP++
		f.deliverPlain(buf[:RecordHeaderLen+n])
		f.st.icmpSent.Add(1)
		return
	}
	if dst == BroadcastPeer {
		return
	}
	// We relay for src: the error travels back to src as if sent by the
	// destination peer, so that src learns the MACs correctly.
	n, err := FragNeeded(f.scratch, frame, mtu)
	if err != nil {
		return
	}
	if f.unicast(dst, src, f.scratch[:n], false) {
		f.st.icmpSent.Add(1)
	}
}

// deliverPlain queues a plain frame for the device. entry holds the frame
// after RecordHeaderLen bytes of headroom, which a device with virtio-net
// headers reads the (all-zero) header from.
func (f *forwarder) deliverPlain(entry []byte) {
	if f.r.vnet {
		clear(entry[RecordHeaderLen-VnetHdrLen : RecordHeaderLen])
	}
	f.local = append(f.local, entry)
}

// deliverVnet queues a frame whose virtio-net header sits in the
// VnetHdrLen bytes before it, at entry[RecordHeaderLen-VnetHdrLen:
// RecordHeaderLen]. A header that does not fit the frame (vnetValid) is
// dropped, counted, before it reaches the device. A device without such
// headers gets the frame made plain, or nothing (counted) for a
// super-frame it cannot take.
func (f *forwarder) deliverVnet(entry []byte) {
	hdr := entry[RecordHeaderLen-VnetHdrLen : RecordHeaderLen]
	if !vnetValid(hdr, entry[RecordHeaderLen:]) {
		f.st.drops[dropBadVnet].Add(1)
		return
	}
	if !f.r.vnet {
		if hdr[1] != vnetGSONone {
			f.deliverSegmented(hdr, entry[RecordHeaderLen:])
			return
		}
		if !plainFromVnet(hdr, entry[RecordHeaderLen:]) {
			f.st.drops[dropOffload].Add(1)
			return
		}
	}
	f.local = append(f.local, entry)
}

// deliverSegmented queues the segments of a TCP super-frame for a device
// without virtio-net headers, or counts a drop when the frame cannot be
// segmented (not TCP, or segments larger than the device takes).
func (f *forwarder) deliverSegmented(hdr, frame []byte) {
	s, ok := parseSuperTCP(hdr, frame, f.segLen)
	if !ok {
		f.st.drops[dropOffload].Add(1)
		return
	}
	for i := range s.segments {
		if f.nSeg == len(f.segBufs) {
			f.segBufs = append(f.segBufs, make([]byte, RecordHeaderLen+f.segLen))
		}
		buf := f.segBufs[f.nSeg]
		f.nSeg++
		n := s.segment(buf[RecordHeaderLen:], frame, i)
		f.local = append(f.local, buf[:RecordHeaderLen+n])
	}
	f.st.segmented.Add(uint64(s.segments))
}
