package plugin

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
	"github.com/weftnet/weft/internal/segment"
	wipam "github.com/weftnet/weft/ipam"
	"github.com/weftnet/weft/mesh"
)

// lonePeers and nullTransport make an allocator that is alone in its
// mesh: it seeds its pools at once.
type lonePeers struct{ self mesh.PeerName }

func (p lonePeers) ReachablePeers() []mesh.PeerName       { return []mesh.PeerName{p.self} }
func (lonePeers) PeerNickName(mesh.PeerName) string       { return "" }
func (nullTransport) Broadcast(mesh.GossipData)           {}
func (nullTransport) Unicast(mesh.PeerName, []byte) error { return nil }

type nullTransport struct{}

// memStore keeps the saved state in memory.
type memStore struct {
	mu   sync.Mutex
	data []byte
}

func (s *memStore) LoadPlugin() ([]byte, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.data, nil }
func (s *memStore) SavePlugin(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = b
	return nil
}

// fakeLinks records the links the drivers make.
type fakeLinks struct {
	mu    sync.Mutex
	links map[string]Link
}

func (f *fakeLinks) CreateLink(l Link) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links[l.EndpointID] = l
	return "vwc" + l.EndpointID[:4], nil
}

func (f *fakeLinks) DeleteLink(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.links, id)
	return nil
}

type rig struct {
	d     *Drivers
	alloc *wipam.Allocator
	links *fakeLinks
	store *memStore
}

func newRig(t *testing.T) *rig {
	t.Helper()
	self, err := mesh.ParsePeerName("00:00:00:00:00:01")
	if err != nil {
		t.Fatal(err)
	}
	alloc, err := wipam.New(wipam.Config{
		Self: self, Range: netip.MustParsePrefix("10.32.0.0/12"),
		DefaultSubnet: netip.MustParsePrefix("10.32.0.0/16"),
		Transport:     nullTransport{}, Peers: lonePeers{self},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{alloc: alloc, links: &fakeLinks{links: map[string]Link{}}, store: &memStore{}}
	r.d = r.reopen(t)
	return r
}

// reopen makes new drivers on the same allocator and store, as a restart
// of the router does.
func (r *rig) reopen(t *testing.T) *Drivers {
	t.Helper()
	d, err := New(Config{Allocator: r.alloc, Links: r.links, Store: r.store, MTU: 1376, DNS: netip.MustParseAddr("169.254.53.53")})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (r *rig) pool(t *testing.T, subnet string) *ipam.RequestPoolResponse {
	t.Helper()
	res, err := r.d.IPAM().RequestPool(&ipam.RequestPoolRequest{AddressSpace: AddressSpace, Pool: subnet})
	if err != nil {
		t.Fatalf("RequestPool(%q): %v", subnet, err)
	}
	return res
}

func (r *rig) addr(t *testing.T, poolID, want string, opts map[string]string) netip.Prefix {
	t.Helper()
	res, err := r.d.IPAM().RequestAddress(&ipam.RequestAddressRequest{PoolID: poolID, Address: want, Options: opts})
	if err != nil {
		t.Fatalf("RequestAddress(%q, %q): %v", poolID, want, err)
	}
	p, err := netip.ParsePrefix(res.Address)
	if err != nil {
		t.Fatalf("RequestAddress gave %q: %v", res.Address, err)
	}
	return p
}

var gatewayOpts = map[string]string{requestAddressType: gatewayRequest}

func wantErr(t *testing.T, err error, contains string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %v, want one containing %q", err, contains)
	}
}

// TestIPAMPools: no subnet is the default subnet; a subnet outside the
// range becomes a pool of weft's IPAM; the gateway is never handed out;
// bad requests say what is wrong.
func TestIPAMPools(t *testing.T) {
	r := newRig(t)
	def := r.pool(t, "")
	if def.Pool != "10.32.0.0/16" {
		t.Fatalf("default pool %s, want the default subnet 10.32.0.0/16", def.Pool)
	}
	if a := r.addr(t, def.PoolID, "", nil); !netip.MustParsePrefix("10.32.0.0/16").Contains(a.Addr()) || a.Bits() != 16 {
		t.Fatalf("address %s not in the default subnet", a)
	}
	p := r.pool(t, "10.1.1.0/24")
	if gw := r.addr(t, p.PoolID, "10.1.1.1", gatewayOpts); gw.String() != "10.1.1.1/24" {
		t.Fatalf("gateway %s", gw)
	}
	seen := map[netip.Addr]bool{}
	for range 20 {
		a := r.addr(t, p.PoolID, "", nil)
		if a.Addr() == netip.MustParseAddr("10.1.1.1") || seen[a.Addr()] {
			t.Fatalf("address %s handed out twice or is the gateway", a)
		}
		seen[a.Addr()] = true
	}
	_, err := r.d.IPAM().RequestAddress(&ipam.RequestAddressRequest{PoolID: p.PoolID, Address: "10.1.1.1"})
	wantErr(t, err, "gateway")
	_, err = r.d.IPAM().RequestAddress(&ipam.RequestAddressRequest{PoolID: p.PoolID, Address: "10.1.2.5"})
	wantErr(t, err, "outside the network's subnet 10.1.1.0/24")
	if a := r.addr(t, p.PoolID, "10.1.1.200", nil); a.String() != "10.1.1.200/24" {
		t.Fatalf("--ip gave %s", a)
	}
	_, err = r.d.IPAM().RequestAddress(&ipam.RequestAddressRequest{PoolID: p.PoolID, Address: "10.1.1.200"})
	wantErr(t, err, "already in use")
	if err := r.d.IPAM().ReleaseAddress(&ipam.ReleaseAddressRequest{PoolID: p.PoolID, Address: "10.1.1.200"}); err != nil {
		t.Fatal(err)
	}
	r.addr(t, p.PoolID, "10.1.1.200", nil)

	for _, c := range []struct{ pool, sub, want string }{
		{"10.1.1.0/24", "", "overlaps 10.1.1.0/24"},
		{"10.1.0.0/16", "", "overlaps 10.1.1.0/24"},
		{"10.1.3.7/24", "", "host bits are set; did you mean 10.1.3.0/24"},
		{"banana", "", "want an IPv4 subnet"},
		{"fd00::/64", "", "want an IPv4 subnet"},
		{"10.0.0.0/31", "", "/8 to /30"},
		{"10.0.0.0/8", "", "overlaps weft's --ipalloc-range"},
		{"10.9.0.0/16", "10.8.0.0/24", "is not inside --subnet"},
	} {
		_, err := r.d.IPAM().RequestPool(&ipam.RequestPoolRequest{Pool: c.pool, SubPool: c.sub})
		wantErr(t, err, c.want)
	}
	_, err = r.d.IPAM().RequestPool(&ipam.RequestPoolRequest{})
	wantErr(t, err, "already has a weft network on the default subnet")
	_, err = r.d.IPAM().RequestPool(&ipam.RequestPoolRequest{V6: true})
	wantErr(t, err, "IPv4 addresses only")
	_, err = r.d.IPAM().RequestAddress(&ipam.RequestAddressRequest{PoolID: "weft:1.2.3.0/24"})
	wantErr(t, err, "unknown weft pool")

	// A subnet inside the range may lie in the default subnet's network
	// (IPAM keeps them apart), and --ip-range limits allocation.
	in := r.pool(t, "10.32.7.0/24")
	if a := r.addr(t, in.PoolID, "", nil); !netip.MustParsePrefix("10.32.7.0/24").Contains(a.Addr()) {
		t.Fatalf("address %s not in 10.32.7.0/24", a)
	}
	sub, err := r.d.IPAM().RequestPool(&ipam.RequestPoolRequest{Pool: "10.2.0.0/16", SubPool: "10.2.5.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if a := r.addr(t, sub.PoolID, "", nil); !netip.MustParsePrefix("10.2.5.0/24").Contains(a.Addr()) || a.Bits() != 16 {
		t.Fatalf("address %s not in the --ip-range 10.2.5.0/24 with the subnet's length", a)
	}
	if err := r.d.IPAM().ReleasePool(&ipam.ReleasePoolRequest{PoolID: sub.PoolID}); err != nil {
		t.Fatal(err)
	}
}

func createNetwork(t *testing.T, d *Drivers, id, subnet, gw, space string) error {
	t.Helper()
	data := &network.IPAMData{AddressSpace: space, Pool: subnet}
	if gw != "" {
		data.Gateway = gw
	}
	return d.Network().CreateNetwork(&network.CreateNetworkRequest{NetworkID: id, IPv4Data: []*network.IPAMData{data}})
}

// TestEndpointLifecycle: an endpoint's MAC names its network's segment;
// Join makes its interface with a route to the DNS server; Leave and
// DeleteEndpoint remove it; the state survives a restart.
func TestEndpointLifecycle(t *testing.T) {
	r := newRig(t)
	p := r.pool(t, "10.1.1.0/24")
	r.addr(t, p.PoolID, "10.1.1.1", gatewayOpts)
	if err := createNetwork(t, r.d, "net1", p.Pool, "10.1.1.1/24", AddressSpace); err != nil {
		t.Fatal(err)
	}
	a := r.addr(t, p.PoolID, "", nil)
	res, err := r.d.Network().CreateEndpoint(&network.CreateEndpointRequest{NetworkID: "net1", EndpointID: "ep1aaaa", Interface: &network.EndpointInterface{Address: a.String()}})
	if err != nil {
		t.Fatal(err)
	}
	mac, err := net.ParseMAC(res.Interface.MacAddress)
	if err != nil {
		t.Fatal(err)
	}
	seg := segment.ForSubnet(netip.MustParsePrefix("10.1.1.0/24"))
	if segment.Of(mac) != seg {
		t.Fatalf("MAC %s names segment %d, want %d", mac, segment.Of(mac), seg)
	}

	// Restart: the network and endpoint are still known.
	r.d = r.reopen(t)
	join, err := r.d.Network().Join(&network.JoinRequest{NetworkID: "net1", EndpointID: "ep1aaaa", SandboxKey: "/var/run/docker/netns/x"})
	if err != nil {
		t.Fatal(err)
	}
	l, ok := r.links.links["ep1aaaa"]
	if !ok || l.Segment != seg || l.MAC.String() != mac.String() || l.MTU != 1376 {
		t.Fatalf("link %+v (made: %v)", l, ok)
	}
	if join.InterfaceName.SrcName != "vwcep1a" || join.InterfaceName.DstPrefix != "eth" {
		t.Fatalf("interface name %+v", join.InterfaceName)
	}
	if len(join.StaticRoutes) != 1 || join.StaticRoutes[0].Destination != "169.254.53.53/32" || join.StaticRoutes[0].RouteType != routeConnected {
		t.Fatalf("static routes %+v", join.StaticRoutes)
	}
	if join.Gateway != "" {
		t.Fatalf("gateway %q: no host answers on it", join.Gateway)
	}
	if err := r.d.Network().Leave(&network.LeaveRequest{NetworkID: "net1", EndpointID: "ep1aaaa"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.links.links["ep1aaaa"]; ok {
		t.Fatal("Leave left the link")
	}
	if err := r.d.Network().DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: "net1", EndpointID: "ep1aaaa"}); err != nil {
		t.Fatal(err)
	}
	if len(r.d.Endpoints()) != 0 {
		t.Fatal("endpoint still known")
	}

	// Bad endpoints.
	_, err = r.d.Network().CreateEndpoint(&network.CreateEndpointRequest{NetworkID: "nope", EndpointID: "e2", Interface: &network.EndpointInterface{Address: a.String()}})
	wantErr(t, err, "not known to weft")
	_, err = r.d.Network().CreateEndpoint(&network.CreateEndpointRequest{NetworkID: "net1", EndpointID: "e2", Interface: &network.EndpointInterface{Address: a.String(), MacAddress: "02:00:00:00:00:01"}})
	wantErr(t, err, "--mac-address")
	_, err = r.d.Network().CreateEndpoint(&network.CreateEndpointRequest{NetworkID: "net1", EndpointID: "e2", Interface: &network.EndpointInterface{Address: "10.9.9.9/24"}})
	wantErr(t, err, "not in the network's subnet")
	_, err = r.d.Network().Join(&network.JoinRequest{NetworkID: "net1", EndpointID: "e2"})
	wantErr(t, err, "unknown endpoint")

	if err := r.d.Network().DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: "net1"}); err != nil {
		t.Fatal(err)
	}
}

// TestNetworkChecks: overlapping subnets, a second default network,
// options and IPv6 are refused with a reason.
func TestNetworkChecks(t *testing.T) {
	r := newRig(t)
	if err := createNetwork(t, r.d, "def", "10.32.0.0/16", "", AddressSpace); err != nil {
		t.Fatal(err)
	}
	wantErr(t, createNetwork(t, r.d, "def2", "10.32.0.0/16", "", AddressSpace), "overlaps")
	if err := createNetwork(t, r.d, "in", "10.32.9.0/24", "", AddressSpace); err != nil {
		t.Fatalf("a subnet inside the range next to the default network: %v", err)
	}
	if err := createNetwork(t, r.d, "a", "10.1.0.0/16", "", AddressSpace); err != nil {
		t.Fatal(err)
	}
	wantErr(t, createNetwork(t, r.d, "b", "10.1.2.0/24", "", AddressSpace), "overlaps 10.1.0.0/16")
	err := r.d.Network().CreateNetwork(&network.CreateNetworkRequest{NetworkID: "o", Options: map[string]interface{}{genericOptions: map[string]interface{}{"foo": "1"}},
		IPv4Data: []*network.IPAMData{{AddressSpace: AddressSpace, Pool: "10.3.0.0/16"}}})
	wantErr(t, err, "unknown option -o foo")
	err = r.d.Network().CreateNetwork(&network.CreateNetworkRequest{NetworkID: "v6", IPv4Data: []*network.IPAMData{{Pool: "10.4.0.0/16"}}, IPv6Data: []*network.IPAMData{{Pool: "fd00::/64"}}})
	wantErr(t, err, "IPv4 only")
	err = r.d.Network().CreateNetwork(&network.CreateNetworkRequest{NetworkID: "none"})
	wantErr(t, err, "exactly one IPv4 subnet")
}

// TestDockerIPAMClaimed: with Docker's own IPAM, the network driver
// claims each endpoint's address in weft's IPAM and frees it with the
// endpoint; an address held elsewhere is refused with the advice to use
// weft's IPAM.
func TestDockerIPAMClaimed(t *testing.T) {
	r := newRig(t)
	if err := createNetwork(t, r.d, "dn", "10.5.0.0/24", "10.5.0.1/24", "LocalDefault"); err != nil {
		t.Fatal(err)
	}
	if h := r.alloc.Holder(netip.MustParseAddr("10.5.0.1")); h != gatewayIdent {
		t.Fatalf("gateway held by %q", h)
	}
	if _, err := r.d.Network().CreateEndpoint(&network.CreateEndpointRequest{NetworkID: "dn", EndpointID: "epA", Interface: &network.EndpointInterface{Address: "10.5.0.2/24"}}); err != nil {
		t.Fatal(err)
	}
	if h := r.alloc.Holder(netip.MustParseAddr("10.5.0.2")); h != endpointIdentPrefix+"epA" {
		t.Fatalf("10.5.0.2 held by %q", h)
	}
	_, err := r.d.Network().CreateEndpoint(&network.CreateEndpointRequest{NetworkID: "dn", EndpointID: "epB", Interface: &network.EndpointInterface{Address: "10.5.0.2/24"}})
	wantErr(t, err, "--ipam-driver weft")
	if err := r.d.Network().DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: "dn", EndpointID: "epA"}); err != nil {
		t.Fatal(err)
	}
	if h := r.alloc.Holder(netip.MustParseAddr("10.5.0.2")); h != "" {
		t.Fatalf("10.5.0.2 still held by %q", h)
	}
	if err := r.d.Network().DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: "dn"}); err != nil {
		t.Fatal(err)
	}
	if h := r.alloc.Holder(netip.MustParseAddr("10.5.0.1")); h != "" {
		t.Fatalf("gateway still held by %q", h)
	}
}
