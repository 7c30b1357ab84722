// Package router is weft's data plane: a userspace Ethernet switch between
// the local TAP device (a Device attached to the bridge "weft") and the
// other peers, reached over a batched UDP socket (a Transport).
//
// Frames captured from the TAP are learned (source MAC → this peer),
// looked up in the MAC table and encapsulated, several per datagram, into
// datagrams towards the next hop that the mesh's routes name. Datagrams
// from peers are decapsulated, delivered to the TAP, relayed onward along
// unicast routes, or continued along the broadcast tree. The wire format
// is specified in docs/protocol-data.md. On connections with data keys
// (mesh.OverlayConnectionParams.Keys) every datagram is sealed just before
// its batch is sent and opened right after its header is parsed (seal.go).
//
// Goroutines: Run starts exactly three and waits for them:
//   - the TAP reader owns its read buffers, its outgoing datagram buffers
//     and its counters; it is the only caller of Device.Read;
//   - the UDP reader likewise owns its receive and relay buffers and is
//     the only caller of Transport.ReadBatch;
//   - the timer goroutine owns the per-connection timers (heartbeats,
//     path MTU probing, failure detection) and the MAC table expiry.
//
// The readers share no lock per frame: routes and connections are read
// from immutable snapshots held in atomic pointers, the MAC table from a
// lock-free index (new MACs take its writers' lock once per batch). Device
// writes from the two readers are serialised by a mutex taken once per
// batch. The mesh calls the Overlay methods from its own goroutines; they
// never block.
package router
