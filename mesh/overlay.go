package mesh

import (
	"net/netip"

	"github.com/weftnet/weft/secure"
)

// Overlay is the data plane as the mesh sees it: it carries frames between
// peers over UDP. The mesh calls it when a control connection has completed
// its handshake and whenever the routes change. Implemented by router.Router.
type Overlay interface {
	// PrepareConnection sets up the data path towards the peer of a newly
	// handshaken control connection. It must not block.
	PrepareConnection(p OverlayConnectionParams) (OverlayConnection, error)
	// RoutesChanged hands over a new immutable routes snapshot. It is called
	// from the mesh's own goroutine and must not block.
	RoutesChanged(r *Routes)
}

// OverlayConnectionParams describe one control connection to the overlay.
type OverlayConnectionParams struct {
	// LocalPeer and RemotePeer are the names of the two ends.
	LocalPeer, RemotePeer PeerName
	// RemoteNickName is the peer's human-readable name.
	RemoteNickName string
	// Outbound is true when we dialled the connection.
	Outbound bool
	// ConnUID identifies this connection; both ends see the same value.
	// Heartbeats carry it so that stale datagrams of an earlier connection
	// between the same peers are ignored.
	ConnUID uint64
	// RemoteAddr is the remote end of the TCP control connection.
	RemoteAddr netip.AddrPort
	// RemoteDataPort is the UDP port the peer receives data on (from the
	// handshake). Together with RemoteAddr's address it gives the first
	// address to send heartbeats to; the inbound side also learns the
	// address from the heartbeats it receives (NAT friendly).
	RemoteDataPort uint16
	// SendControl sends msg to the remote overlay over the control
	// connection, where it is delivered to OverlayConnection.HandleControl.
	// Safe for concurrent use; returns an error once the connection closed.
	SendControl func(msg []byte) error
	// Keys is the connection's data key ring when data datagrams must be
	// sealed (both ends use a password and not both trust each other's
	// underlay address); nil when data travels in clear. Each connection
	// has its own ring, whose sending side matches the receiving side of
	// the peer's ring. The overlay seals with Reserve and Seal, opens with
	// Open and calls Tick periodically (see package secure).
	Keys *secure.KeyRing
	// ControlEncrypted is true when the control connection ran the
	// encrypted handshake and seals every message (both ends use a
	// password), including the overlay control messages of SendControl.
	ControlEncrypted bool
	// RemoteFeatures are the extra features the peer announced in the
	// handshake (Config.Features on its side), such as its fast path's
	// port; a copy the overlay owns.
	RemoteFeatures map[string]string
}

// OverlayStatus describes the data path of one connection for status output.
type OverlayStatus struct {
	// State is "pending" until heartbeats flow both ways, then "established".
	State string
	// MTU is the largest Ethernet payload (IP packet) that currently fits
	// in one datagram to this peer, as verified by path MTU probing.
	MTU int
	// Encrypted is true when data datagrams are sealed.
	Encrypted bool
	// Reason explains a failure or a degraded state; empty when healthy.
	Reason string
	// Path is the path the peer's unicast frames take: "fastdp" (the
	// kernel's VXLAN) or "sleeve" (the overlay's userspace path).
	Path string
	// PathReason says why the frames take Path.
	PathReason string
}

// OverlayConnection is the overlay's side of one connection.
type OverlayConnection interface {
	// Confirm is called once the mesh has accepted the connection (it is
	// not a duplicate); the overlay then starts heartbeats.
	Confirm()
	// Established is closed once data flows in both directions.
	Established() <-chan struct{}
	// Failed delivers at most one error when the data path has failed for
	// good; the mesh then closes the control connection.
	Failed() <-chan error
	// HandleControl handles a control message the peer's overlay sent with
	// SendControl. Called from the connection's reader goroutine.
	HandleControl(msg []byte)
	// Status reports the state of the data path.
	Status() OverlayStatus
	// Stop ends heartbeats and forgets the connection. Idempotent.
	Stop()
}
