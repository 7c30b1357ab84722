// Package secure is the cryptographic core of weft's encrypted links: the
// password-authenticated handshake on a control connection, the ciphers for
// the control message stream, the sealing and opening of data-plane UDP
// datagrams with replay protection, and the per-connection key ring that
// rekeys the data keys by epoch.
//
// Everything here is pure: no sockets, no goroutines, no logging, no global
// state. The handshake is a state machine that consumes and produces
// messages; the mesh owns the control connection and drives it. The data
// plane (the router) owns the UDP socket and the datagram buffers and calls
// KeyRing.Reserve/Sealer.Seal and KeyRing.Open per datagram.
//
// Goroutines: a Handshake, a ControlSealer and a ControlOpener belong to
// one goroutine each (the mesh's writer and reader of a connection). A
// KeyRing, Sealer and Opener are safe for concurrent use by any number of
// goroutines. ReplayWindow is a plain value guarded by its owner.
//
// The protocol is specified in docs/security.md.
package secure
