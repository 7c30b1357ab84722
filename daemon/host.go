package daemon

import (
	"net"
	"net/netip"

	"github.com/weftnet/weft/plugin"
	"github.com/weftnet/weft/router"
)

// Host is the network glue of the host the router runs on: the bridge, the
// veths of attached targets and the host's own addresses. cmd/weft
// implements it with package netdev; tests use a fake. Methods are called
// from one goroutine at a time (the daemon serialises them).
type Host interface {
	// EnsureBridge creates the bridge if missing, sets its MTU and brings it up.
	EnsureBridge(bridge string, mtu int) error
	// AttachToBridge enslaves an existing link (the TAP) to the bridge.
	AttachToBridge(ifname, bridge string, mtu int) error
	// DeleteLink removes a link if it exists.
	DeleteLink(name string) error
	// ParseTarget checks a target string and returns its canonical form.
	ParseTarget(target string) (string, error)
	// Attach gives target an interface on the bridge with addrs, and its
	// port the filter opts asks for.
	Attach(bridge, target string, addrs []netip.Prefix, mtu int, opts AttachOptions) (Attachment, error)
	// Detach removes addrs (all when empty) from target and returns those
	// removed; the interface goes when no address is left. When the
	// target's namespace no longer exists the error wraps ErrTargetGone.
	Detach(bridge, target string, addrs []netip.Prefix) ([]netip.Prefix, error)
	// AddRoute adds (or replaces) a link-scope route to dst through the
	// target's weft interface.
	AddRoute(target string, dst netip.Prefix) error
	// RouteRepliesFrom makes packets with source src (the DNS server's
	// answers) leave through the bridge, whatever their destination.
	RouteRepliesFrom(bridge string, src netip.Addr) error
	// TargetExists reports whether the target's namespace (or process)
	// still exists.
	TargetExists(target string) bool
	// List returns the attached targets.
	List(bridge string) ([]Attachment, error)
	// Expose and Hide add and remove addresses of the bridge itself.
	Expose(bridge string, addrs []netip.Prefix) error
	Hide(bridge string, addrs []netip.Prefix) ([]netip.Prefix, error)
	// Exposed lists the bridge's addresses.
	Exposed(bridge string) ([]netip.Prefix, error)
	// Reset removes the bridge and every veth weft made.
	Reset(bridge string) error
	// CreateEndpointLink makes the veth pair of a Docker network
	// endpoint: the host end on the bridge with its segment's port
	// filter; it returns the name of the end Docker moves into the
	// container.
	CreateEndpointLink(bridge string, l plugin.Link) (string, error)
	// DeleteEndpointLink removes an endpoint's veth pair, if any.
	DeleteEndpointLink(endpointID string) error
	// EndpointLinks lists the endpoint IDs that have a veth pair.
	EndpointLinks() ([]string, error)
	// MarkReady marks the target's weft interface as fully set up
	// (addresses, routes): a container held by the Docker API proxy then
	// runs its command.
	MarkReady(target string) error
	// UnderlayMTU is the MTU of the interface that carries traffic to dst
	// (or of the default route's interface when dst is invalid).
	UnderlayMTU(dst netip.Addr) (int, error)
}

// AttachOptions are the choices of one attachment (netdev.AttachOptions).
type AttachOptions struct {
	// SourceCheck lets the target send only with its interface's MAC
	// and, for IPv4 and ARP, from the addresses weft gave it: those
	// attached now and Given.
	SourceCheck bool
	// Given are the addresses weft gave the target before.
	Given []netip.Prefix
}

// Attachment is one attached target as the host reports it.
type Attachment struct {
	Target string
	MAC    net.HardwareAddr
	Addrs  []netip.Prefix
	// Err is set when the target's namespace has gone.
	Err error
}

// Deps are the real devices and sockets, built by cmd/weft and handed in.
type Deps struct {
	Host Host
	// OpenTAP creates the TAP device the router reads and writes.
	OpenTAP func(name string, mtu int) (router.Device, error)
	// ListenUDP opens the mesh's UDP data socket.
	ListenUDP func(addr netip.AddrPort) (router.Transport, error)
	// OpenFastPath creates the fast path's VXLAN device on the bridge;
	// nil (tests) or an error leaves all traffic in userspace. The
	// daemon deletes the device (Host.DeleteLink) when it stops.
	OpenFastPath func(cfg FastPathConfig) (FastPathDevice, error)
	// Docker is the host's Docker; nil when the router runs without
	// Docker support (container targets then fail with a clear error).
	Docker Docker
}
