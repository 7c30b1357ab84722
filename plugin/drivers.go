package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
)

// Name is the name of both drivers: `docker network create -d weft
// --ipam-driver weft`.
const Name = "weft"

// AddressSpace is the IPAM driver's address space, local and global.
const AddressSpace = "weft"

// Allocator is weft's IPAM as the drivers use it; *ipam.Allocator
// implements it.
type Allocator interface {
	// Range returns --ipalloc-range and the default subnet.
	Range() (rng, defaultSubnet netip.Prefix)
	CreatePool(prefix netip.Prefix) error
	ReleasePool(prefix netip.Prefix) error
	Allocate(ctx context.Context, ident string, subnet netip.Prefix) (netip.Prefix, error)
	Claim(ctx context.Context, ident string, addr netip.Addr) (managed bool, err error)
	Free(ident string, addr netip.Addr) bool
	Holder(addr netip.Addr) string
}

// Link is the interface of one endpoint, as Links makes it.
type Link struct {
	// EndpointID is Docker's endpoint ID.
	EndpointID string
	MAC        net.HardwareAddr
	Segment    uint16
	MTU        int
}

// Links makes and removes endpoint interfaces on the host's bridge.
type Links interface {
	// CreateLink makes the veth pair of an endpoint, its host end on the
	// bridge with the segment's port filter, and returns the name of the
	// end Docker moves into the container.
	CreateLink(l Link) (inner string, err error)
	// DeleteLink removes it (no error when it is gone).
	DeleteLink(endpointID string) error
}

// Config is what the drivers need.
type Config struct {
	Allocator Allocator
	Links     Links
	Store     Store
	// MTU of the endpoints' interfaces.
	MTU int
	// DNS is the address of weft's DNS server; endpoints get a route to
	// it. Zero: no DNS.
	DNS netip.Addr
	// Timeout bounds a wait for peers (borrowing, claims); 0 means 15 s,
	// well inside Docker's plugin timeout.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Drivers is the network driver and the IPAM driver, sharing one state.
// All methods are safe for concurrent use.
type Drivers struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	st *state
}

// New returns the drivers with the state cfg.Store saved last.
func New(cfg Config) (*Drivers, error) {
	if cfg.Allocator == nil || cfg.Links == nil || cfg.Store == nil {
		return nil, fmt.Errorf("plugin: allocator, links and store are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	data, err := cfg.Store.LoadPlugin()
	if err != nil {
		return nil, fmt.Errorf("plugin: load state: %w", err)
	}
	st, err := decodeState(data)
	if err != nil {
		return nil, err
	}
	return &Drivers{cfg: cfg, log: cfg.Logger, st: st}, nil
}

// Network returns the network driver.
func (d *Drivers) Network() network.Driver { return netDriver{d} }

// IPAM returns the IPAM driver.
func (d *Drivers) IPAM() ipam.Ipam { return ipamDriver{d} }

// Endpoints returns the IDs of the endpoints the drivers know, so that
// the router can remove interfaces left from endpoints Docker deleted
// while it was not running.
func (d *Drivers) Endpoints() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.st.Endpoints))
	for id := range d.st.Endpoints {
		out = append(out, id)
	}
	return out
}

// Subnets returns the subnets of the weft Docker networks, for the DNS
// server's list of clients it recurses for.
func (d *Drivers) Subnets() []netip.Prefix {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]netip.Prefix, 0, len(d.st.Networks))
	for _, n := range d.st.Networks {
		out = append(out, n.Subnet)
	}
	return out
}

// save persists the state. Called with d.mu held.
func (d *Drivers) save() error {
	data, err := encodeState(d.st)
	if err != nil {
		return err
	}
	if err := d.cfg.Store.SavePlugin(data); err != nil {
		return fmt.Errorf("save the Docker plugin state: %w", err)
	}
	return nil
}

func (d *Drivers) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d.cfg.Timeout)
}

// HasNetwork reports whether id is a weft Docker network.
func (d *Drivers) HasNetwork(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.st.Networks[id]
	return ok
}

// releasePool gives up a pool this host made for a Docker network; a
// failure (addresses still held here) is logged and the pool kept.
func (d *Drivers) releasePool(subnet netip.Prefix) {
	if err := d.cfg.Allocator.ReleasePool(subnet); err != nil {
		d.log.Warn("could not release a Docker network's pool; it stays in weft's IPAM", "subnet", subnet, "err", err)
	}
}
