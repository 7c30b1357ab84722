package router

import "errors"

// Errors returned by the datagram decoder.
var (
	// ErrShortDatagram means a datagram is shorter than its header and tag.
	ErrShortDatagram = errors.New("datagram too short")
	// ErrBadVersion means a datagram carries an unknown protocol version.
	ErrBadVersion = errors.New("unsupported datagram version")
	// ErrBadRecord means a record header is truncated or its length runs
	// past the end of the datagram.
	ErrBadRecord = errors.New("malformed record")
	// ErrBadBody means a heartbeat, probe or probe-ack body is malformed.
	ErrBadBody = errors.New("malformed datagram body")
)

// Errors of the frame helpers (ICMP synthesis, fragmentation).
var (
	// ErrNotIPv4 means a frame does not carry a well-formed IPv4 packet.
	ErrNotIPv4 = errors.New("not an IPv4 packet")
	// ErrNoRoom means a caller's buffer or the MTU is too small.
	ErrNoRoom = errors.New("buffer or MTU too small")
)

// Errors of the router and its connections.
var (
	// ErrHeartbeatTimeout is delivered on OverlayConnection.Failed when no
	// heartbeat arrived for Config.HeartbeatTimeout.
	ErrHeartbeatTimeout = errors.New("timed out waiting for UDP heartbeat")
	// ErrConfig means a Config lacks a required field.
	ErrConfig = errors.New("invalid router config")
	// ErrSelfConnection means the mesh asked for a connection to ourselves.
	ErrSelfConnection = errors.New("connection to ourselves")
	// ErrTrainRefused is wrapped by a Segmenter's WriteBatch error when
	// the path to a train's address cannot take segmentation offload.
	ErrTrainRefused = errors.New("path refuses UDP segmentation offload")
	// ErrNoPeerRoute means a ping found no route to its peer: the peer is
	// unknown or unreachable.
	ErrNoPeerRoute = errors.New("no route to peer")
	// ErrTooManyPings means the router already has the most pings in
	// flight it keeps (64).
	ErrTooManyPings = errors.New("too many pings in flight")
)
