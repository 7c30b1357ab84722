package router

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/weftnet/weft/mesh"
)

// FeatureFastPathPort is the handshake feature (mesh.Config.Features) by
// which a router announces its fast path: the UDP port of its VXLAN
// device. A router without a fast path does not announce it.
const FeatureFastPathPort = "fastdp-port"

// Path names, as in mesh.OverlayStatus.Path.
const (
	PathFastDP = "fastdp"
	PathSleeve = "sleeve"
)

// FastPath is the kernel's fast path as the router sees it; package
// router/fastdp implements it. Every method may be called from any
// goroutine and must not block; Up and Miss are called per frame by the
// TAP readers and must not allocate.
type FastPath interface {
	// Connect registers the direct, unencrypted connection uid to a peer
	// whose router announced a fast path at the same port, at underlay
	// address addr.
	Connect(peer mesh.PeerName, uid uint64, addr netip.Addr)
	// Disconnect forgets the connection uid to peer, if still registered.
	Disconnect(peer mesh.PeerName, uid uint64)
	// Up reports whether the peer's unicast frames may take the fast path.
	Up(peer mesh.PeerName) bool
	// Miss reports a frame to mac (behind peer, whose fast path is up)
	// that the bridge gave the router: the kernel has no entry for mac.
	// mac is not retained.
	Miss(mac []byte, peer mesh.PeerName)
	// Moved reports that mac, learned from a frame, moved to peer (this
	// router's name: to this host). mac is not retained.
	Moved(mac []byte, peer mesh.PeerName)
	// PathStatus reports whether peer's frames take the fast path and
	// why; ok is false when peer is not registered.
	PathStatus(peer mesh.PeerName) (up bool, reason string, ok bool)
}

// FastPathCounters are the fast path's counters, reported in Stats: what
// the kernel carried (its VXLAN device's frames and bytes, heartbeats
// included) and the fast path's own work.
type FastPathCounters struct {
	FramesIn, BytesIn, FramesOut, BytesOut uint64
	HeartbeatsSent, HeartbeatsReceived     uint64
	EntriesInstalled, EntriesRemoved       uint64
}

// FastPathCounter is implemented by a FastPath that counts; Stats reads
// it. It must not block for long (it may ask the kernel).
type FastPathCounter interface {
	FastPathCounters() FastPathCounters
}

// fastPathRefusal returns why a connection cannot use the fast path, or
// "" when it may (once heartbeats verify it).
func (r *Router) fastPathRefusal(p mesh.OverlayConnectionParams) string {
	if r.cfg.FastPath == nil {
		return "this router runs without a fast path"
	}
	if p.Keys != nil {
		return "encrypted: the fast path carries plain traffic only"
	}
	v, ok := p.RemoteFeatures[FeatureFastPathPort]
	if !ok {
		return "the peer runs without a fast path"
	}
	if port, err := strconv.Atoi(v); err != nil || port != r.cfg.FastPathPort {
		return fmt.Sprintf("the peer's fast path uses UDP port %q, ours %d", v, r.cfg.FastPathPort)
	}
	if !p.RemoteAddr.Addr().IsValid() {
		return "no underlay address for the peer"
	}
	return ""
}

// pathStatus fills in the path of a connection's status.
func (c *conn) pathStatus(st *mesh.OverlayStatus) {
	st.Path, st.PathReason = PathSleeve, c.noFast
	if c.noFast != "" {
		return
	}
	up, why, ok := c.r.cfg.FastPath.PathStatus(c.peer)
	switch {
	case !ok:
		st.PathReason = "not registered with the fast path"
	case up:
		st.Path, st.PathReason = PathFastDP, why
	default:
		st.PathReason = why
	}
}

// noteMiss tells the fast path about a captured unicast frame to a MAC
// behind owner while owner's fast path is up, once per destination and
// batch. TAP readers; allocates nothing.
func (f *forwarder) noteMiss(dst []byte, owner mesh.PeerName) {
	fp := f.r.cfg.FastPath
	if fp == nil {
		return
	}
	k := macKey(dst)
	if f.missOK && f.lastMiss == k {
		return
	}
	f.lastMiss, f.missOK = k, true
	if fp.Up(owner) {
		fp.Miss(dst, owner)
		f.st.fastMisses.Add(1)
	}
}

// noteMoved tells the fast path that a source MAC moved to owner (to
// this host when owner is the router itself), so that no kernel entry
// keeps sending its frames to where it was. Readers; rare.
func (f *forwarder) noteMoved(src []byte, owner mesh.PeerName) {
	if fp := f.r.cfg.FastPath; fp != nil {
		fp.Moved(src, owner)
	}
}
