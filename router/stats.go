package router

import "sync/atomic"

// Drop reasons, indexes into counters.drops.
const (
	dropTooBig        = iota // frame larger than the path MTU, not fragmentable
	dropNoRoute              // no route or no usable connection to the next hop
	dropBadDatagram          // datagram or record failed to decode
	dropUnknownSender        // datagram from a peer without a confirmed connection
	dropLoop                 // frame looping back (our own source peer, or MAC loop guard)
	dropSendError            // Transport.WriteBatch rejected the datagram
	dropBadFrame             // captured frame too short or with a multicast source MAC
	dropLinkLocal            // IEEE 802.1D link-local destination (STP BPDU and friends)
	dropDevice               // Device.Write failed
	dropOffload              // super-frame a device without offloads cannot take
	dropHostLocal            // ARP about a host-local address (Config.HostLocal)
	dropReassembly           // segment out of order, or its frame incomplete
	dropAuthFailed           // sealed datagram failed authentication (forged, tampered, truncated)
	dropReplay               // sealed datagram replayed or older than the replay window
	dropUnknownKey           // sealed datagram under a key id the ring does not hold (or past its grace)
	dropUnsealed             // plain datagram on a connection with data keys, or sealed without keys
	dropSealFailed           // datagram not sent: the key ring refused a counter, or no known connection
	dropBadVnet              // virtio-net header from a peer that does not fit its frame (vnetValid)
	numDrops
)

// counters are the statistics of one goroutine. Each goroutine owns one
// counters value so that hot counters never share a cache line between
// goroutines; Stats sums them.
type counters struct {
	tapFramesIn, tapBytesIn   atomic.Uint64
	tapFramesOut, tapBytesOut atomic.Uint64
	udpIn, udpBytesIn         atomic.Uint64
	udpOut, udpBytesOut       atomic.Uint64
	recordsOut, recordsIn     atomic.Uint64
	relayed                   atomic.Uint64
	icmpSent, fragmented      atomic.Uint64
	segmented                 atomic.Uint64
	trainsRefused             atomic.Uint64
	fastMisses                atomic.Uint64
	drops                     [numDrops]atomic.Uint64
	_                         [64]byte
}

// Stats is a snapshot of the router's counters, for metrics and status.
type Stats struct {
	// TAPFramesIn and TAPBytesIn count frames read from the device.
	TAPFramesIn, TAPBytesIn uint64
	// TAPFramesOut and TAPBytesOut count frames written to the device
	// (delivered from peers, plus synthesized ICMP errors).
	TAPFramesOut, TAPBytesOut uint64
	// UDPDatagramsIn and UDPBytesIn count datagrams received.
	UDPDatagramsIn, UDPBytesIn uint64
	// UDPDatagramsOut and UDPBytesOut count datagrams sent.
	UDPDatagramsOut, UDPBytesOut uint64
	// RecordsOut counts frame records put into datagrams (a broadcast
	// frame counts once per next hop); RecordsIn counts records received.
	RecordsOut, RecordsIn uint64
	// Relayed counts records forwarded for other peers.
	Relayed uint64
	// ICMPSent counts synthesized ICMP "fragmentation needed" errors;
	// Fragmented counts IPv4 packets the router fragmented itself.
	ICMPSent, Fragmented uint64
	// Segmented counts TCP segments the router cut from super-frames for
	// a device without offloads.
	Segmented uint64
	// TrainsRefused counts trains of datagrams a path refused
	// (ErrTrainRefused), which went again datagram by datagram.
	TrainsRefused uint64
	// FastPathMisses counts captured frames to a MAC behind a peer whose
	// fast path is up (the kernel had no entry for it yet), reported to
	// the fast path at most once per destination and batch; the frames
	// themselves took the userspace path.
	FastPathMisses uint64
	// MACMoves counts MACs that moved between peers (or to/from local).
	MACMoves uint64
	// MACEvictions counts MACs evicted because the table was full.
	MACEvictions uint64
	// MACRefused counts learnings refused because the port (the local
	// device, or the peer) already held Config.MACPortLimit MACs: the
	// MAC stays unknown, and frames to it are flooded.
	MACRefused uint64
	// Drops by reason.
	DropTooBig, DropNoRoute, DropBadDatagram, DropUnknownSender      uint64
	DropLoop, DropSendError, DropBadFrame, DropLinkLocal, DropDevice uint64
	// DropOffload counts super-frames a device without offloads could not
	// take (not TCP, or segments larger than its MTU); DropReassembly counts frames lost because a segment was
	// missing or out of order.
	DropOffload, DropReassembly uint64
	// DropHostLocal counts ARP frames about host-local addresses kept
	// from the other hosts.
	DropHostLocal uint64
	// DropAuthFailed counts sealed datagrams that failed authentication
	// (forged or tampered); DropReplay those whose counter was seen before
	// or is older than the replay window; DropUnknownKey those under a key
	// id no current key has (or the previous key after its grace).
	DropAuthFailed, DropReplay, DropUnknownKey uint64
	// DropUnsealed counts plain datagrams on a connection with data keys
	// and sealed datagrams on one without.
	DropUnsealed uint64
	// DropSealFailed counts datagrams not sent because they could not be
	// sealed (the key ring refused a counter).
	DropSealFailed uint64
	// DropBadVnet counts frames from peers whose virtio-net header did
	// not fit the frame or announced what weft's TAP cannot produce:
	// dropped before the device write.
	DropBadVnet uint64
}

func (s *Stats) add(c *counters) {
	s.TAPFramesIn += c.tapFramesIn.Load()
	s.TAPBytesIn += c.tapBytesIn.Load()
	s.TAPFramesOut += c.tapFramesOut.Load()
	s.TAPBytesOut += c.tapBytesOut.Load()
	s.UDPDatagramsIn += c.udpIn.Load()
	s.UDPBytesIn += c.udpBytesIn.Load()
	s.UDPDatagramsOut += c.udpOut.Load()
	s.UDPBytesOut += c.udpBytesOut.Load()
	s.RecordsOut += c.recordsOut.Load()
	s.RecordsIn += c.recordsIn.Load()
	s.Relayed += c.relayed.Load()
	s.ICMPSent += c.icmpSent.Load()
	s.Fragmented += c.fragmented.Load()
	s.Segmented += c.segmented.Load()
	s.TrainsRefused += c.trainsRefused.Load()
	s.FastPathMisses += c.fastMisses.Load()
	s.DropTooBig += c.drops[dropTooBig].Load()
	s.DropNoRoute += c.drops[dropNoRoute].Load()
	s.DropBadDatagram += c.drops[dropBadDatagram].Load()
	s.DropUnknownSender += c.drops[dropUnknownSender].Load()
	s.DropLoop += c.drops[dropLoop].Load()
	s.DropOffload += c.drops[dropOffload].Load()
	s.DropHostLocal += c.drops[dropHostLocal].Load()
	s.DropReassembly += c.drops[dropReassembly].Load()
	s.DropSendError += c.drops[dropSendError].Load()
	s.DropBadFrame += c.drops[dropBadFrame].Load()
	s.DropLinkLocal += c.drops[dropLinkLocal].Load()
	s.DropDevice += c.drops[dropDevice].Load()
	s.DropAuthFailed += c.drops[dropAuthFailed].Load()
	s.DropReplay += c.drops[dropReplay].Load()
	s.DropUnknownKey += c.drops[dropUnknownKey].Load()
	s.DropUnsealed += c.drops[dropUnsealed].Load()
	s.DropSealFailed += c.drops[dropSealFailed].Load()
	s.DropBadVnet += c.drops[dropBadVnet].Load()
}
