package plugin

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/weftnet/weft/internal/segment"
	wipam "github.com/weftnet/weft/ipam"
)

// genericOptions is where Docker puts `docker network create -o` options.
const genericOptions = "com.docker.network.generic"

// routeConnected is libnetwork's route type for a route with no next hop.
const routeConnected = 1

// containerIfPrefix is what Docker names the interface in the container
// (eth0, eth1, ...), as on its own networks.
const containerIfPrefix = "eth"

// endpointIdentPrefix starts the ident under which the network driver
// claims, in weft's IPAM, the address Docker's own IPAM gave an endpoint.
const endpointIdentPrefix = "docker-ep:"

// netDriver implements network.Driver.
type netDriver struct{ d *Drivers }

// GetCapabilities implements network.Driver: each host creates the
// network itself (local scope); its containers reach across hosts.
func (netDriver) GetCapabilities() (*network.CapabilitiesResponse, error) {
	return &network.CapabilitiesResponse{Scope: network.LocalScope, ConnectivityScope: network.GlobalScope}, nil
}

// CreateNetwork implements network.Driver.
func (n netDriver) CreateNetwork(r *network.CreateNetworkRequest) error {
	if len(r.IPv6Data) > 0 {
		return errors.New("weft networks are IPv4 only: create the network without --ipv6")
	}
	if len(r.IPv4Data) != 1 || r.IPv4Data[0] == nil {
		return fmt.Errorf("a weft network has exactly one IPv4 subnet, not %d: give one --subnet (or none)", len(r.IPv4Data))
	}
	if err := checkOptions(r.Options); err != nil {
		return err
	}
	data := r.IPv4Data[0]
	subnet, err := netip.ParsePrefix(data.Pool)
	if err != nil || !subnet.Addr().Is4() {
		return fmt.Errorf("invalid subnet %q from the IPAM driver", data.Pool)
	}
	var gw netip.Addr
	if data.Gateway != "" {
		p, err := netip.ParsePrefix(data.Gateway)
		if err != nil {
			return fmt.Errorf("invalid gateway %q from the IPAM driver", data.Gateway)
		}
		gw = p.Addr()
	}
	d := n.d
	rng, def := d.cfg.Allocator.Range()
	nw := &Network{ID: r.NetworkID, Subnet: subnet.Masked(), Gateway: gw, DockerIPAM: data.AddressSpace != AddressSpace}
	nw.Segment = segment.ForSubnet(nw.Subnet)
	if !nw.DockerIPAM && nw.Subnet == def {
		nw.Segment = segment.Default
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.st.Networks[r.NetworkID]; ok {
		return nil
	}
	for _, o := range d.st.Networks {
		switch {
		case overlaps(o.Subnet, nw.Subnet) && !nested(o.Subnet, nw.Subnet, def, rng):
			return fmt.Errorf("subnet %s overlaps %s, the subnet of weft network %.12s on this host: pick a subnet that does not overlap", nw.Subnet, o.Subnet, o.ID)
		case o.Segment == nw.Segment:
			return fmt.Errorf("subnet %s would share its segment with %s, the subnet of weft network %.12s: pick another subnet", nw.Subnet, o.Subnet, o.ID)
		}
	}
	if nw.DockerIPAM {
		if err := n.claimDockerIPAM(nw, rng); err != nil {
			return err
		}
	}
	d.st.Networks[nw.ID] = nw
	d.log.Info("Docker network created", "network", nw.ID, "subnet", nw.Subnet, "segment", nw.Segment, "docker-ipam", nw.DockerIPAM)
	return d.save()
}

// claimDockerIPAM makes the subnet of a network whose addresses come from
// Docker's own IPAM known to weft's IPAM, and holds its gateway, so that
// the endpoints' addresses can be claimed. Called with d.mu held.
func (n netDriver) claimDockerIPAM(nw *Network, rng netip.Prefix) error {
	d := n.d
	switch {
	case within(nw.Subnet, rng):
	case overlaps(nw.Subnet, rng):
		return fmt.Errorf("subnet %s overlaps weft's --ipalloc-range %s without lying inside it: pick a subnet inside the range or apart from it", nw.Subnet, rng)
	default:
		if err := d.cfg.Allocator.CreatePool(nw.Subnet); err != nil {
			return fmt.Errorf("share subnet %s among the weft hosts: %w", nw.Subnet, err)
		}
		nw.PoolCreated = true
	}
	if nw.Gateway.IsValid() {
		ctx, cancel := d.ctx()
		defer cancel()
		if err := reserveGateway(ctx, d.cfg.Allocator, nw.Gateway); err != nil {
			return err
		}
	}
	return nil
}

// checkOptions refuses `-o` options: weft networks take none.
func checkOptions(opts map[string]interface{}) error {
	generic, _ := opts[genericOptions].(map[string]interface{})
	keys := make([]string, 0, len(generic))
	for k := range generic {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		return fmt.Errorf("unknown option -o %s: weft networks take no driver options", strings.Join(keys, ", -o "))
	}
	return nil
}

// AllocateNetwork implements network.Driver (swarm only: unused).
func (netDriver) AllocateNetwork(*network.AllocateNetworkRequest) (*network.AllocateNetworkResponse, error) {
	return &network.AllocateNetworkResponse{}, nil
}

// FreeNetwork implements network.Driver (swarm only: unused).
func (netDriver) FreeNetwork(*network.FreeNetworkRequest) error { return nil }

// DeleteNetwork implements network.Driver.
func (n netDriver) DeleteNetwork(r *network.DeleteNetworkRequest) error {
	d := n.d
	d.mu.Lock()
	defer d.mu.Unlock()
	nw := d.st.Networks[r.NetworkID]
	if nw == nil {
		return nil
	}
	delete(d.st.Networks, r.NetworkID)
	if nw.DockerIPAM && nw.Gateway.IsValid() && d.cfg.Allocator.Holder(nw.Gateway) == gatewayIdent {
		d.cfg.Allocator.Free(gatewayIdent, nw.Gateway)
	}
	if nw.PoolCreated {
		d.releasePool(nw.Subnet)
	}
	d.log.Info("Docker network removed", "network", nw.ID, "subnet", nw.Subnet)
	return d.save()
}

// CreateEndpoint implements network.Driver: the endpoint's MAC names its
// network's segment.
func (n netDriver) CreateEndpoint(r *network.CreateEndpointRequest) (*network.CreateEndpointResponse, error) {
	d := n.d
	d.mu.Lock()
	nw := d.st.Networks[r.NetworkID]
	d.mu.Unlock()
	if nw == nil {
		return nil, fmt.Errorf("network %.12s is not known to weft (it was made while weft's state was lost): remove it with 'docker network rm' and create it again", r.NetworkID)
	}
	if r.Interface == nil || r.Interface.Address == "" {
		return nil, errors.New("the endpoint has no IPv4 address: weft networks need one")
	}
	if r.Interface.AddressIPv6 != "" {
		return nil, errors.New("weft networks are IPv4 only")
	}
	if r.Interface.MacAddress != "" {
		return nil, errors.New("weft chooses the MAC address of containers on its networks (it names the network): run the container without --mac-address")
	}
	addr, err := netip.ParsePrefix(r.Interface.Address)
	if err != nil || !addr.Addr().Is4() || !nw.Subnet.Contains(addr.Addr()) {
		return nil, fmt.Errorf("address %q is not in the network's subnet %s", r.Interface.Address, nw.Subnet)
	}
	if nw.DockerIPAM {
		ctx, cancel := d.ctx()
		defer cancel()
		if _, err := d.cfg.Allocator.Claim(ctx, endpointIdentPrefix+r.EndpointID, addr.Addr()); err != nil {
			var taken *wipam.TakenError
			if errors.As(err, &taken) {
				return nil, fmt.Errorf("address %s is already in use by %s on %s: Docker's own IPAM gives out addresses on each host by itself; create the network with --ipam-driver weft so that the hosts share them", addr.Addr(), taken.Holder, taken.Host)
			}
			return nil, fmt.Errorf("claim %s in weft's IPAM: %w", addr.Addr(), err)
		}
	}
	mac := segment.MAC(nw.Segment, addr.Addr())
	ep := &Endpoint{ID: r.EndpointID, NetworkID: nw.ID, Addr: addr, MAC: mac.String()}
	d.mu.Lock()
	d.st.Endpoints[ep.ID] = ep
	err = d.save()
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &network.CreateEndpointResponse{Interface: &network.EndpointInterface{MacAddress: ep.MAC}}, nil
}

// DeleteEndpoint implements network.Driver.
func (n netDriver) DeleteEndpoint(r *network.DeleteEndpointRequest) error {
	d := n.d
	d.mu.Lock()
	defer d.mu.Unlock()
	ep := d.st.Endpoints[r.EndpointID]
	if ep == nil {
		return nil
	}
	if err := d.cfg.Links.DeleteLink(ep.ID); err != nil {
		d.log.Warn("could not remove an endpoint's interface", "endpoint", ep.ID, "err", err)
	}
	if nw := d.st.Networks[ep.NetworkID]; nw != nil && nw.DockerIPAM {
		d.cfg.Allocator.Free(endpointIdentPrefix+ep.ID, ep.Addr.Addr())
	}
	delete(d.st.Endpoints, ep.ID)
	return d.save()
}

// EndpointInfo implements network.Driver.
func (n netDriver) EndpointInfo(r *network.InfoRequest) (*network.InfoResponse, error) {
	d := n.d
	d.mu.Lock()
	defer d.mu.Unlock()
	ep := d.st.Endpoints[r.EndpointID]
	if ep == nil {
		return nil, fmt.Errorf("unknown endpoint %.12s", r.EndpointID)
	}
	v := map[string]string{"mac": ep.MAC}
	if nw := d.st.Networks[ep.NetworkID]; nw != nil {
		v["segment"] = strconv.Itoa(int(nw.Segment))
	}
	return &network.InfoResponse{Value: v}, nil
}

// Join implements network.Driver: the endpoint's interface is made on the
// bridge, and the container gets a route to weft's DNS server.
func (n netDriver) Join(r *network.JoinRequest) (*network.JoinResponse, error) {
	d := n.d
	d.mu.Lock()
	ep := d.st.Endpoints[r.EndpointID]
	var nw *Network
	if ep != nil {
		nw = d.st.Networks[ep.NetworkID]
	}
	d.mu.Unlock()
	if ep == nil || nw == nil {
		return nil, fmt.Errorf("unknown endpoint %.12s", r.EndpointID)
	}
	mac, err := net.ParseMAC(ep.MAC)
	if err != nil {
		return nil, fmt.Errorf("endpoint %.12s: %w", ep.ID, err)
	}
	inner, err := d.cfg.Links.CreateLink(Link{EndpointID: ep.ID, MAC: mac, Segment: nw.Segment, MTU: d.cfg.MTU})
	if err != nil {
		return nil, fmt.Errorf("make the interface of endpoint %.12s: %w", ep.ID, err)
	}
	res := &network.JoinResponse{InterfaceName: network.InterfaceName{SrcName: inner, DstPrefix: containerIfPrefix}}
	if d.cfg.DNS.IsValid() {
		res.StaticRoutes = []*network.StaticRoute{{Destination: netip.PrefixFrom(d.cfg.DNS, 32).String(), RouteType: routeConnected}}
	}
	return res, nil
}

// Leave implements network.Driver.
func (n netDriver) Leave(r *network.LeaveRequest) error {
	return n.d.cfg.Links.DeleteLink(r.EndpointID)
}

// DiscoverNew implements network.Driver (nothing to do).
func (netDriver) DiscoverNew(*network.DiscoveryNotification) error { return nil }

// DiscoverDelete implements network.Driver (nothing to do).
func (netDriver) DiscoverDelete(*network.DiscoveryNotification) error { return nil }

// ProgramExternalConnectivity implements network.Driver (weft publishes
// no ports).
func (netDriver) ProgramExternalConnectivity(*network.ProgramExternalConnectivityRequest) error {
	return nil
}

// RevokeExternalConnectivity implements network.Driver.
func (netDriver) RevokeExternalConnectivity(*network.RevokeExternalConnectivityRequest) error {
	return nil
}
