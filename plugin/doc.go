// Package plugin is weft's Docker network driver and IPAM driver, both
// named "weft" and served on one plugin socket.
//
// The IPAM driver hands out addresses from weft's IPAM (package ipam), so
// two hosts never give out the same address: a network without --subnet
// allocates in the default subnet (the plain weft network), one with
// --subnet inside --ipalloc-range allocates there, and one outside it
// becomes a pool of its own that every host using it shares.
//
// The network driver gives each container an interface on the host's weft
// bridge. A network is identified by its subnet, so the same network made
// on two hosts (same subnet) is one L2 segment across them; two networks
// are kept apart by the MAC addresses the driver chooses (package
// internal/segment) and the port filters of the bridge. A network whose
// addresses come from Docker's own IPAM has every endpoint's address
// claimed in weft's IPAM, so a duplicate across hosts is refused rather
// than silently breaking the network.
//
// The drivers are pure logic: addresses come from an Allocator, interfaces
// from Links, and state is saved through a Store; Serve puts them on a
// unix socket with go-plugins-helpers.
package plugin
