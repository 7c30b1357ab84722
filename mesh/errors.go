package mesh

import (
	"errors"

	"github.com/weftnet/weft/secure"
)

// Sentinel errors of the mesh. Callers compare with errors.Is; the texts
// appear in `weft status connections`.
var (
	// ErrNameNotKey means a peer's name is not the name of its identity
	// key (NameOf): it claims a name it cannot own.
	ErrNameNotKey = errors.New("peer name does not belong to its identity key")
	// ErrBadSignature means a topology entry is not signed by the key
	// of the peer it describes.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrForgedSource means a gossip message does not come from the
	// peer it names as its source.
	ErrForgedSource = errors.New("gossip source forged")
	// ErrIdentityProof means a peer failed to prove it holds the private
	// identity key of the name it claims.
	ErrIdentityProof = errors.New("identity proof failed")
	// ErrNotWeft means the remote end did not send the weft header.
	ErrNotWeft = errors.New("remote is not a weft peer (bad protocol header)")
	// ErrVersionMismatch means the protocol version ranges do not overlap.
	ErrVersionMismatch = errors.New("protocol version mismatch")
	// ErrPeerUsesPassword means the peer uses a password and we do not. It
	// is secure.ErrPeerRequiresPassword, so the reason is the standard one.
	ErrPeerUsesPassword = secure.ErrPeerRequiresPassword
	// ErrWeUsePassword means we use a password and the peer does not. It
	// is secure.ErrPeerHasNoPassword.
	ErrWeUsePassword = secure.ErrPeerHasNoPassword
	// ErrConnectToSelf means the remote end is ourselves; the target is not retried.
	ErrConnectToSelf = errors.New("cannot connect to ourself")
	// ErrDuplicate means another connection to the same peer is kept instead.
	ErrDuplicate = errors.New("duplicate connection to the same peer")
	// ErrDuplicateName means the remote peer claims a peer name that
	// belongs to another router: ourselves with another UID, or a peer
	// we hold a live connection to from another address or with another
	// nickname. The new connection is refused with the reason on both
	// sides; the established one is kept.
	ErrDuplicateName = errors.New("duplicate peer name")
	// ErrIncompatible means Config.CheckPeer refused the peer's features
	// (for example a different IP allocation range); status shows the
	// checker's own text as the reason.
	ErrIncompatible = errors.New("incompatible peer")
	// ErrConnLimit means the connection limit was reached.
	ErrConnLimit = errors.New("too many connections")
	// ErrMessageTooLarge means a message exceeds the maximum message size.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrEmptyMessage means a message has no tag byte.
	ErrEmptyMessage = errors.New("empty message")
	// ErrTruncated means a message ended before its fields did.
	ErrTruncated = errors.New("message truncated")
	// ErrConnClosed means the connection is closed.
	ErrConnClosed = errors.New("connection closed")
	// ErrSendQueueFull means a connection's send queue overflowed; the
	// connection is closed.
	ErrSendQueueFull = errors.New("send queue full")
	// ErrHeartbeatTimeout means nothing arrived on the control connection
	// for longer than the heartbeat timeout.
	ErrHeartbeatTimeout = errors.New("timed out waiting for TCP heartbeat")
	// ErrNoRoute means a gossip unicast has no route to its destination.
	ErrNoRoute = errors.New("no route to peer")
	// ErrForgotten closes the connections of a forgotten target.
	ErrForgotten = errors.New("peer forgotten")
	// ErrStopped means the node is not running.
	ErrStopped = errors.New("mesh node stopped")
)
