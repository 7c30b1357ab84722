package plugin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/docker/go-plugins-helpers/ipam"
	wipam "github.com/weftnet/weft/ipam"
)

// gatewayIdent holds a network's gateway address in weft's IPAM, so that
// no container is given it.
const gatewayIdent = "weft:gateway"

// addrIdentPrefix starts the ident under which the IPAM driver holds an
// address it gave Docker.
const addrIdentPrefix = "docker:"

// requestAddressType is the option Docker sets when it asks for a
// network's gateway address.
const (
	requestAddressType = "RequestAddressType"
	gatewayRequest     = "com.docker.network.gateway"
)

// ipamDriver implements ipam.Ipam.
type ipamDriver struct{ d *Drivers }

// GetCapabilities implements ipam.Ipam.
func (ipamDriver) GetCapabilities() (*ipam.CapabilitiesResponse, error) {
	return &ipam.CapabilitiesResponse{}, nil
}

// GetDefaultAddressSpaces implements ipam.Ipam.
func (ipamDriver) GetDefaultAddressSpaces() (*ipam.AddressSpacesResponse, error) {
	return &ipam.AddressSpacesResponse{LocalDefaultAddressSpace: AddressSpace, GlobalDefaultAddressSpace: AddressSpace}, nil
}

// RequestPool implements ipam.Ipam: no subnet means the default subnet
// (the plain weft network); a subnet inside --ipalloc-range is allocated
// in the range; one outside it becomes a pool of weft's IPAM.
func (i ipamDriver) RequestPool(r *ipam.RequestPoolRequest) (*ipam.RequestPoolResponse, error) {
	if r.V6 {
		return nil, errors.New("weft's IPAM driver gives out IPv4 addresses only: create the network without --ipv6")
	}
	rng, def := i.d.cfg.Allocator.Range()
	subnet := def
	if r.Pool != "" {
		var err error
		if subnet, err = parseSubnet("--subnet", r.Pool); err != nil {
			return nil, err
		}
	}
	var sub netip.Prefix
	if r.SubPool != "" {
		var err error
		if sub, err = parseSubnet("--ip-range", r.SubPool); err != nil {
			return nil, err
		}
		if !within(sub, subnet) {
			return nil, fmt.Errorf("--ip-range %s is not inside --subnet %s", sub, subnet)
		}
	}
	if overlaps(subnet, rng) && !within(subnet, rng) {
		return nil, fmt.Errorf("--subnet %s overlaps weft's --ipalloc-range %s without lying inside it: pick a subnet inside the range or apart from it", subnet, rng)
	}
	d := i.d
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.st.Pools {
		if overlaps(p.Subnet, subnet) && !nested(p.Subnet, subnet, def, rng) {
			if r.Pool == "" && p.Subnet == def {
				return nil, fmt.Errorf("this host already has a weft network on the default subnet %s (the plain weft network); give this network its own --subnet", def)
			}
			return nil, fmt.Errorf("--subnet %s overlaps %s, the subnet of another weft network on this host: pick a subnet that does not overlap", subnet, p.Subnet)
		}
	}
	p := &Pool{ID: poolID(subnet, sub), Subnet: subnet, Range: sub, Refs: 1}
	if !overlaps(subnet, rng) {
		if err := d.cfg.Allocator.CreatePool(subnet); err != nil {
			return nil, fmt.Errorf("share --subnet %s among the weft hosts: %w", subnet, err)
		}
		p.Created = true
	}
	d.st.Pools[p.ID] = p
	if err := d.save(); err != nil {
		return nil, err
	}
	d.log.Info("Docker pool requested", "pool", p.ID, "subnet", subnet, "ip-range", sub)
	return &ipam.RequestPoolResponse{PoolID: p.ID, Pool: subnet.String()}, nil
}

// ReleasePool implements ipam.Ipam.
func (i ipamDriver) ReleasePool(r *ipam.ReleasePoolRequest) error {
	d := i.d
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.st.Pools[r.PoolID]
	if p == nil {
		return nil
	}
	if p.Refs--; p.Refs > 0 {
		return d.save()
	}
	delete(d.st.Pools, r.PoolID)
	if p.Created {
		d.releasePool(p.Subnet)
	}
	return d.save()
}

// RequestAddress implements ipam.Ipam: the gateway is held so that no
// container gets it; a container's address is claimed (--ip) or
// allocated.
func (i ipamDriver) RequestAddress(r *ipam.RequestAddressRequest) (*ipam.RequestAddressResponse, error) {
	d := i.d
	d.mu.Lock()
	p := d.st.Pools[r.PoolID]
	d.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("unknown weft pool %q: its network was made while weft's state was lost; remove the network and create it again", r.PoolID)
	}
	var want netip.Addr
	if r.Address != "" {
		a, err := netip.ParseAddr(r.Address)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("invalid address %q: want an IPv4 address like 10.1.1.5", r.Address)
		}
		if !p.Subnet.Contains(a) {
			return nil, fmt.Errorf("--ip %s is outside the network's subnet %s: pick an address inside it", a, p.Subnet)
		}
		want = a
	}
	ctx, cancel := d.ctx()
	defer cancel()
	if r.Options[requestAddressType] == gatewayRequest {
		if !want.IsValid() {
			got, err := d.cfg.Allocator.Allocate(ctx, gatewayIdent, p.Subnet)
			if err != nil {
				return nil, fmt.Errorf("gateway of %s: %w", p.Subnet, err)
			}
			return &ipam.RequestAddressResponse{Address: got.String()}, nil
		}
		if err := reserveGateway(ctx, d.cfg.Allocator, want); err != nil {
			return nil, err
		}
		return &ipam.RequestAddressResponse{Address: netip.PrefixFrom(want, p.Subnet.Bits()).String()}, nil
	}
	ident := addrIdentPrefix + randomHex(6)
	if want.IsValid() {
		if _, err := d.cfg.Allocator.Claim(ctx, ident, want); err != nil {
			return nil, explainTaken(err, want)
		}
		return &ipam.RequestAddressResponse{Address: netip.PrefixFrom(want, p.Subnet.Bits()).String()}, nil
	}
	in := p.Subnet
	if p.Range.IsValid() {
		in = p.Range
	}
	got, err := d.cfg.Allocator.Allocate(ctx, ident, in)
	if err != nil {
		return nil, fmt.Errorf("allocate an address in %s: %w", in, err)
	}
	return &ipam.RequestAddressResponse{Address: netip.PrefixFrom(got.Addr(), p.Subnet.Bits()).String()}, nil
}

// ReleaseAddress implements ipam.Ipam.
func (i ipamDriver) ReleaseAddress(r *ipam.ReleaseAddressRequest) error {
	a, err := netip.ParseAddr(r.Address)
	if err != nil {
		if p, perr := netip.ParsePrefix(r.Address); perr == nil {
			a, err = p.Addr(), nil
		}
	}
	if err != nil {
		return fmt.Errorf("invalid address %q", r.Address)
	}
	holder := i.d.cfg.Allocator.Holder(a)
	if holder == gatewayIdent || strings.HasPrefix(holder, addrIdentPrefix) {
		i.d.cfg.Allocator.Free(holder, a)
	}
	return nil
}

// reserveGateway holds a network's gateway address. Every host that
// creates the network reserves the same one: held by the gateway ident
// on another host counts as reserved.
func reserveGateway(ctx context.Context, a Allocator, gw netip.Addr) error {
	_, err := a.Claim(ctx, gatewayIdent, gw)
	var taken *wipam.TakenError
	if errors.As(err, &taken) && taken.Holder == gatewayIdent {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--gateway %s: %w; pick another gateway", gw, err)
	}
	return nil
}

// explainTaken turns a failed claim into a message for --ip.
func explainTaken(err error, a netip.Addr) error {
	var taken *wipam.TakenError
	if errors.As(err, &taken) {
		if taken.Holder == gatewayIdent {
			return fmt.Errorf("--ip %s is the network's gateway address: pick another address", a)
		}
		return fmt.Errorf("--ip %s is already in use by %s on %s: pick another address", a, taken.Holder, taken.Host)
	}
	return fmt.Errorf("--ip %s: %w", a, err)
}

// parseSubnet parses an IPv4 subnet given to Docker.
func parseSubnet(flag, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil || !p.Addr().Is4():
		return netip.Prefix{}, fmt.Errorf("invalid %s %q: want an IPv4 subnet like 10.1.1.0/24", flag, s)
	case p != p.Masked():
		return netip.Prefix{}, fmt.Errorf("invalid %s %s: host bits are set; did you mean %s?", flag, s, p.Masked())
	case p.Bits() < 8 || p.Bits() > 30:
		return netip.Prefix{}, fmt.Errorf("invalid %s %s: weft networks are /8 to /30", flag, s)
	}
	return p, nil
}

// poolID names a pool by its subnet (and --ip-range).
func poolID(subnet, sub netip.Prefix) string {
	if sub.IsValid() {
		return "weft:" + subnet.String() + ":" + sub.String()
	}
	return "weft:" + subnet.String()
}

func overlaps(a, b netip.Prefix) bool { return a.Overlaps(b) }

// within reports whether a lies entirely inside b.
func within(a, b netip.Prefix) bool { return a.Bits() >= b.Bits() && b.Contains(a.Addr()) }

// nested reports the one overlap allowed between two networks' subnets:
// one is the default subnet (the plain weft network, which shares the
// range with `weft attach`) and the other lies inside the range; weft's
// IPAM keeps their addresses apart.
func nested(a, b, def, rng netip.Prefix) bool {
	return (a == def && b != def && within(b, rng)) || (b == def && a != def && within(a, rng))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
