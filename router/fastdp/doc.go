// Package fastdp is the fast path of weft's data plane: the kernel's
// VXLAN device, plugged into the weft bridge, carries plain (unencrypted)
// unicast frames between directly connected peers, while the router's
// userspace path (the "sleeve") keeps everything else.
//
// The Manager decides, per directly connected peer, whether the fast path
// may carry its frames, and programs the device's forwarding entries
// through the Kernel interface accordingly:
//
//   - Each peer that may use the fast path (an unencrypted, direct
//     connection to a router that announced one) is registered with
//     Connect. The manager installs a static entry for the peer's
//     heartbeat MAC (HeartbeatMAC) and sends a heartbeat frame through the
//     device every Config.Interval. The frame is full-sized
//     (Config.FrameSize), so it is also the path MTU probe.
//   - A peer's fast path is up while its heartbeats arrive and say that it
//     hears ours (both directions verified), and down from the first
//     Config.Timeout without one.
//   - A frame the bridge could not send through the device reaches the
//     router on its TAP; when its destination MAC lives behind a peer
//     whose fast path is up, the router reports a Miss and the manager
//     installs an entry for that MAC, so that the following frames stay
//     in the kernel (the frame itself takes the userspace path).
//   - Every tick the manager lists the device's entries, those the kernel
//     learned from received frames included, and removes each whose
//     destination is not a peer with its fast path up: a peer whose
//     heartbeats stopped, a router we no longer connect to, or an address
//     that is no peer at all. Its frames then reach the TAP again and take
//     the userspace path.
//
// Broadcast and multicast frames never take the fast path (the bridge
// floods none to the device), so they follow the userspace broadcast tree
// and reach every peer exactly once.
//
// Goroutines: Run starts a receiver (the only caller of Kernel.Receive)
// and runs the ticker itself (the only caller of the other Kernel
// methods); Connect, Disconnect, Up, Miss and PathStatus may be called
// from any goroutine and never block. Up and Miss allocate nothing.
package fastdp
