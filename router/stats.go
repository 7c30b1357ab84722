package router

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/mesh"
)

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
	flooded                   atomic.Uint64
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
	// The fast path's counters (FastPathCounters), zero without one:
	// frames and bytes its VXLAN device received and sent, heartbeats
	// sent and received, forwarding entries installed and removed.
	FastPathFramesIn, FastPathBytesIn, FastPathFramesOut, FastPathBytesOut uint64
	FastPathHeartbeatsSent, FastPathHeartbeatsReceived                     uint64
	FastPathEntriesInstalled, FastPathEntriesRemoved                       uint64
	// Flooded counts frames read from the device that went to every peer
	// along the broadcast tree: broadcasts, multicasts and unicasts to a
	// MAC not (or no longer) known.
	Flooded uint64
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
	s.Flooded += c.flooded.Load()
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

// peerCounters are the counters of one connection's data path, shared by
// every goroutine that sends to or receives from the peer: one atomic add
// per datagram or record, nothing allocated.
type peerCounters struct {
	txDatagrams, txBytes atomic.Uint64 // datagrams (and their bytes) handed to the transport
	rxDatagrams, rxBytes atomic.Uint64 // datagrams (and their bytes) that passed the checks of open
	txFrames, rxFrames   atomic.Uint64 // frames sent to the peer, and received from it (a frame cut into segments counts once)
	rekeys               atomic.Uint64 // changes of the sending key epoch
	drops                [numPeerDrops]atomic.Uint64
	rtt                  atomic.Int64  // nanoseconds of the last probe or ping round trip; 0: none yet
	probeAt              atomic.Int64  // unix nanos the last probe pair went out
	probeIDs             atomic.Uint64 // candidate id << 32 | control id of that pair
}

// Drops counted per peer as well as for the router: those that say
// something about the peer's keys or its path, indexes into
// peerCounters.drops.
const (
	peerDropAuthFailed = iota
	peerDropReplay
	peerDropUnknownKey
	peerDropUnsealed
	peerDropSealFailed
	numPeerDrops
)

// PeerStats is a snapshot of the data path to one neighbour: the peer of
// one confirmed connection.
type PeerStats struct {
	// Peer is the neighbour's name, NickName its nickname.
	Peer     mesh.PeerName
	NickName string
	// Established is true once heartbeats flow both ways.
	Established bool
	// Addr is the peer's data address ("" while unknown).
	Addr string
	// TxDatagrams and TxBytes count datagrams sent to the peer (heartbeats
	// and probes included), RxDatagrams and RxBytes those received from
	// it that were accepted.
	TxDatagrams, TxBytes, RxDatagrams, RxBytes uint64
	// TxFrames and RxFrames count the frames sent to and received from
	// the peer, relayed ones included; a frame cut into segments counts
	// once.
	TxFrames, RxFrames uint64
	// MTU is the path MTU in use; MTUVerified says a probe of that size
	// came back (else it is assumed).
	MTU         int
	MTUVerified bool
	// RTT is the round trip time of the last probe or ping answered over
	// this connection; 0 when none was measured yet.
	RTT time.Duration
	// LastHeard is when the last valid heartbeat arrived.
	LastHeard time.Time
	// Since is when the connection's handshake completed (its data path
	// was prepared).
	Since time.Time
	// Encrypted says datagrams are sealed; Rekeys counts changes of the
	// sending key since the handshake.
	Encrypted bool
	Rekeys    uint64
	// Reason explains a degraded or failed data path; empty when healthy.
	Reason string
	// DropAuthFailed, DropReplay, DropUnknownKey and DropUnsealed count
	// the peer's datagrams dropped as Stats counts them; DropSealFailed
	// those to the peer that could not be sealed.
	DropAuthFailed, DropReplay, DropUnknownKey, DropUnsealed, DropSealFailed uint64
}

// PeerStats returns the data path of every confirmed connection, sorted by
// peer name.
func (r *Router) PeerStats() []PeerStats {
	conns := *r.conns.Load()
	out := make([]PeerStats, 0, len(conns))
	for _, c := range conns {
		st := c.Status()
		ps := PeerStats{
			Peer: c.peer, NickName: c.p.RemoteNickName, Established: st.State == "established",
			TxDatagrams: c.pc.txDatagrams.Load(), TxBytes: c.pc.txBytes.Load(),
			RxDatagrams: c.pc.rxDatagrams.Load(), RxBytes: c.pc.rxBytes.Load(),
			TxFrames: c.pc.txFrames.Load(), RxFrames: c.pc.rxFrames.Load(),
			MTU: st.MTU, MTUVerified: c.mtuVerified.Load(), RTT: time.Duration(c.pc.rtt.Load()),
			LastHeard: time.Unix(0, c.lastHeard.Load()), Since: c.since,
			Encrypted: c.keys != nil, Rekeys: c.pc.rekeys.Load(), Reason: st.Reason,
			DropAuthFailed: c.pc.drops[peerDropAuthFailed].Load(), DropReplay: c.pc.drops[peerDropReplay].Load(),
			DropUnknownKey: c.pc.drops[peerDropUnknownKey].Load(), DropUnsealed: c.pc.drops[peerDropUnsealed].Load(),
			DropSealFailed: c.pc.drops[peerDropSealFailed].Load(),
		}
		if a := c.addr.Load(); a != nil {
			ps.Addr = a.String()
		}
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b PeerStats) int { return cmp.Compare(a.Peer, b.Peer) })
	return out
}

// probeSent notes a probe pair sent at now, for the round trip time.
// Timer goroutine.
func (c *conn) probeSent(now int64, cand, ctl uint32) {
	c.pc.probeIDs.Store(uint64(cand)<<32 | uint64(ctl))
	c.pc.probeAt.Store(now)
}

// probeAcked measures the round trip of the probe with id, acknowledged
// at now, when it belongs to the last pair sent. Readers; no allocation.
func (c *conn) probeAcked(id uint32, now int64) {
	ids := c.pc.probeIDs.Load()
	if id == 0 || (uint32(ids>>32) != id && uint32(ids) != id) {
		return
	}
	if d := now - c.pc.probeAt.Load(); d > 0 {
		c.pc.rtt.Store(d)
	}
}

// countTx counts a datagram of n bytes to the peer, or a train of
// datagrams of seg bytes each but the last. Senders; no allocation.
func (pc *peerCounters) countTx(n, seg int) {
	d := uint64(1)
	if seg > 0 {
		d = uint64((n + seg - 1) / seg)
	}
	pc.txDatagrams.Add(d)
	pc.txBytes.Add(uint64(n))
}

// maxLinkFailures bounds the peers whose last failure is remembered.
const maxLinkFailures = 256

// LinkFailure is the last failure of the data path to a peer.
type LinkFailure struct {
	Peer mesh.PeerName
	// Reason is the error that failed the connection (for instance
	// ErrHeartbeatTimeout: UDP heartbeats stopped arriving, or never did).
	Reason string
	At     time.Time
}

// linkFailures remembers the last failure per peer, at most
// maxLinkFailures peers (the oldest is forgotten first). Safe for
// concurrent use; its zero value is ready.
type linkFailures struct {
	mu sync.Mutex
	m  map[mesh.PeerName]LinkFailure
}

func (f *linkFailures) note(peer mesh.PeerName, reason string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[mesh.PeerName]LinkFailure{}
	}
	if _, ok := f.m[peer]; !ok && len(f.m) >= maxLinkFailures {
		var oldest LinkFailure
		for _, v := range f.m {
			if oldest.At.IsZero() || v.At.Before(oldest.At) {
				oldest = v
			}
		}
		delete(f.m, oldest.Peer)
	}
	f.m[peer] = LinkFailure{Peer: peer, Reason: reason, At: at}
}

// LinkFailures returns the last failure of the data path to each peer
// whose connection ever failed, sorted by peer.
func (r *Router) LinkFailures() []LinkFailure {
	r.failures.mu.Lock()
	out := make([]LinkFailure, 0, len(r.failures.m))
	for _, v := range r.failures.m {
		out = append(out, v)
	}
	r.failures.mu.Unlock()
	slices.SortFunc(out, func(a, b LinkFailure) int { return cmp.Compare(a.Peer, b.Peer) })
	return out
}
