// Package netdev is weft's netlink glue: the Linux bridge the router's TAP
// is plugged into, the veth pairs that give targets (named network
// namespaces, processes, Docker containers) an interface "ethweft" on
// that bridge, the veth pairs of Docker network endpoints, the tc port
// filters that keep Docker networks apart on the bridge (portfilter.go),
// the addresses on those interfaces and on the bridge itself, and the MTU
// of the underlay. It is the only weft package that imports
// vishvananda/netlink and vishvananda/netns. It does not talk to Docker:
// the caller finds a container's init process.
//
// Every function works in the network namespace of the calling thread
// (the "host" namespace; in production the router's). Work inside a
// target's namespace goes through netlink handles opened in that
// namespace; what needs the thread itself in the target namespace (ARP
// sysctls, the gratuitous ARP socket) runs on a fresh goroutine whose
// locked thread is switched there and back, and is discarded if switching
// back fails, so no thread is ever left in the wrong namespace.
//
// Goroutines: the package keeps none running; each call returns when its
// work is done. Calls may run concurrently, but two calls changing the
// same target race as they would with the ip command.
package netdev
