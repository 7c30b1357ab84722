// Package integration holds weft's multi-host tests: routers in network
// namespaces on a shared underlay (see package netns), containers attached
// to them, and checks of what the kernel sees: pings, TCP, broadcast, routes
// around blocked links, restarts, forget, the connection limit, a smaller
// path MTU, and the command line's answers to bad input. The Docker tests
// run a real dockerd per host (netns.Host.StartDockerd): containers as
// targets, the network and IPAM driver, the managed plugin, the API
// proxy's pass-through, and (as a benchmark) docker run to a first ping.
//
// They need root; as another user every test skips with a message. As root
// they fail, never skip, when a world cannot be built. The weft binary is
// $WEFT_BIN, or ./cmd/weft built once for the run.
package integration
