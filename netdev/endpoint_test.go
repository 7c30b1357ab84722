package netdev

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/segment"
)

// epID is a Docker-like endpoint ID.
func epID(n int) string { return fmt.Sprintf("e%063x", n) }

// canPing reports whether one ping from the namespace reaches addr.
func canPing(ns, addr string) bool {
	return exec.Command("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr).Run() == nil
}

// filters shows the tc filters on one side of a link in the host namespace.
func (e *env) filters(link, side string) string {
	e.t.Helper()
	return e.run("tc", "-n", e.host, "filter", "show", "dev", link, side)
}

// plugEndpoint creates the endpoint and does what Docker does with the
// inner end: moves it into the container's namespace as eth0 with the
// address, up.
func (e *env) plugEndpoint(ep Endpoint, c Target, addr string) {
	e.t.Helper()
	var inner string
	e.do(func() {
		var err error
		if inner, err = CreateEndpoint(testBridge, ep); err != nil {
			e.t.Fatal(err)
		}
	})
	e.ipHost("link", "set", inner, "netns", c.Name)
	e.ipIn(c, "link", "set", inner, "name", "eth0")
	e.ipIn(c, "addr", "add", addr, "dev", "eth0")
	e.ipIn(c, "link", "set", "eth0", "up")
}

func TestAttachMACAndFilter(t *testing.T) {
	e := newEnv(t)
	c := e.container("m1")
	var a Attachment
	e.do(func() {
		if err := EnsureBridge(testBridge, 1400); err != nil {
			t.Fatal(err)
		}
		var err error
		if a, err = Attach(testBridge, c, []netip.Prefix{pfx("10.45.0.1/24")}, 1400, AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if a.MAC[0] == segment.Marker || a.MAC[0]&0x03 != 0x02 {
		t.Errorf("ethweft MAC %s: want locally administered unicast without the marker", a.MAC)
	}
	hostIf := HostIfName(c)
	filters := e.filters(hostIf, "ingress") + e.filters(hostIf, "egress")
	if n := strings.Count(filters, "direct-action"); n != 2 || strings.Count(filters, "pref 1 bpf") < 2 {
		t.Errorf("want one direct-action bpf filter on each side of %s:\n%s", hostIf, filters)
	}

	// An ethweft (and a bridge) from an older weft whose MAC carries the
	// marker gets a new MAC; the filters stay as they are.
	e.ipIn(c, "link", "set", ContainerIf, "address", "7a:00:00:00:00:01")
	e.ipHost("link", "set", testBridge, "address", "7a:00:00:00:00:02")
	e.do(func() {
		if err := EnsureBridge(testBridge, 1400); err != nil {
			t.Fatal(err)
		}
		if mac, _ := BridgeMAC(testBridge); mac[0] == segment.Marker {
			t.Errorf("bridge MAC %s still carries the marker", mac)
		}
		var err error
		if a, err = Attach(testBridge, c, []netip.Prefix{pfx("10.45.0.1/24")}, 1400, AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if a.MAC[0] == segment.Marker {
		t.Errorf("re-attach kept the marker MAC %s", a.MAC)
	}
	if again := e.filters(hostIf, "ingress") + e.filters(hostIf, "egress"); again != filters {
		t.Errorf("re-attach changed the filters:\n%s\nto\n%s", filters, again)
	}
	e.do(func() {
		if err := Expose(testBridge, []netip.Prefix{pfx("10.45.0.254/24")}); err != nil {
			t.Fatal(err)
		}
	})
	if !canPing(c.Name, "10.45.0.254") {
		t.Error("the re-attached target cannot reach the host")
	}
}

// TestIsolation is the rule set at work on one bridge: two endpoints of
// segment A, one of segment B and a plain attached target, all with
// addresses in A's subnet, and the host on the bridge.
func TestIsolation(t *testing.T) {
	e := newEnv(t)
	a1, a2, b1, d := e.container("a1"), e.container("a2"), e.container("b1"), e.container("d1")
	subnet := pfx("10.50.0.0/24")
	segA, segB := segment.ForSubnet(subnet), segment.ForSubnet(pfx("10.60.0.0/24"))
	if segA == segB {
		t.Fatal("test subnets share a segment")
	}
	ip := netip.MustParseAddr
	e.do(func() {
		if err := EnsureBridge(testBridge, 1400); err != nil {
			t.Fatal(err)
		}
		if err := Expose(testBridge, []netip.Prefix{pfx("10.50.0.254/24")}); err != nil {
			t.Fatal(err)
		}
		if _, err := Attach(testBridge, d, []netip.Prefix{pfx("10.50.0.4/24")}, 1400, AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	e.plugEndpoint(Endpoint{ID: epID(1), MAC: segment.MAC(segA, ip("10.50.0.1")), Segment: segA, MTU: 1400}, a1, "10.50.0.1/24")
	e.plugEndpoint(Endpoint{ID: epID(2), MAC: segment.MAC(segA, ip("10.50.0.2")), Segment: segA, MTU: 1400}, a2, "10.50.0.2/24")
	e.plugEndpoint(Endpoint{ID: epID(3), MAC: segment.MAC(segB, ip("10.50.0.3")), Segment: segB, MTU: 1400}, b1, "10.50.0.3/24")

	reach := func(from Target, to string, want bool) {
		t.Helper()
		if got := canPing(from.Name, to); got != want {
			t.Errorf("ping from %s to %s: reached = %v, want %v", from.Name, to, got, want)
		}
	}
	// Within segment A, and everyone with the host, both ways (the host's
	// own ARP and ICMP leave through the filters' egress side).
	reach(a1, "10.50.0.2", true)
	reach(a2, "10.50.0.1", true)
	for i, c := range []Target{a1, a2, b1, d} {
		reach(c, "10.50.0.254", true)
		reach(Target{Name: e.host}, fmt.Sprintf("10.50.0.%d", i+1), true)
	}
	// Across segments and between a segment and the default network.
	// Replies are filtered too, so each ping is followed by a look at the
	// other side's neighbours: an ARP request that got there leaves the
	// sender's MAC behind, which shows the rule of one direction alone.
	unheard := func(in Target, addr string) {
		t.Helper()
		if out := e.ipIn(in, "neigh", "show", addr); strings.Contains(out, "lladdr") {
			t.Errorf("ARP from %s reached %s: %s", addr, in.Name, out)
		}
	}
	reach(b1, "10.50.0.1", false)
	unheard(a1, "10.50.0.3")
	reach(a1, "10.50.0.3", false)
	unheard(b1, "10.50.0.1")
	reach(a1, "10.50.0.4", false)
	unheard(d, "10.50.0.1")
	reach(d, "10.50.0.1", false)

	// A default target that takes a MAC of segment A is stopped at its
	// own port (A's ports would let it in).
	e.ipIn(d, "link", "set", ContainerIf, "address", segment.MAC(segA, ip("10.50.0.4")).String())
	reach(d, "10.50.0.2", false)
	unheard(a2, "10.50.0.4")
	// An endpoint that changes its MAC, even to another of its segment,
	// gets nothing through.
	e.ipIn(a2, "link", "set", "eth0", "address", segment.MAC(segA, ip("10.50.0.9")).String())
	reach(a2, "10.50.0.1", false)
	reach(a2, "10.50.0.254", false)
	reach(a1, "10.50.0.2", false)
}

func TestEndpointLifecycle(t *testing.T) {
	e := newEnv(t)
	seg := segment.ForSubnet(pfx("10.70.0.0/24"))
	ep := Endpoint{ID: epID(7), MAC: segment.MAC(seg, netip.MustParseAddr("10.70.0.7")), Segment: seg, MTU: 1400}
	hostIf, innerIf := endpointNames(ep.ID)
	e.do(func() {
		if _, err := CreateEndpoint(testBridge, ep); !errors.Is(err, ErrNoBridge) {
			t.Errorf("without a bridge = %v, want ErrNoBridge", err)
		}
		if err := EnsureBridge(testBridge, 1400); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []Endpoint{
			{ID: "xyz", MAC: ep.MAC, Segment: seg, MTU: 1400},
			{ID: ep.ID, MAC: ep.MAC, Segment: seg + 1, MTU: 1400},
			{ID: ep.ID, MAC: ep.MAC, Segment: segment.Default, MTU: 1400},
			{ID: ep.ID, MAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 1}, Segment: seg, MTU: 1400},
			{ID: ep.ID, MAC: net.HardwareAddr{0x7b, 0, 0, 0, 0, 1}, Segment: segment.Default, MTU: 1400},
			{ID: ep.ID, MAC: ep.MAC[:4], Segment: seg, MTU: 1400},
			{ID: ep.ID, MAC: ep.MAC, Segment: seg},
		} {
			if _, err := CreateEndpoint(testBridge, bad); !errors.Is(err, ErrBadEndpoint) {
				t.Errorf("CreateEndpoint(%+v) = %v, want ErrBadEndpoint", bad, err)
			}
		}
		for range 2 {
			inner, err := CreateEndpoint(testBridge, ep)
			if err != nil || inner != innerIf {
				t.Fatalf("CreateEndpoint = %q, %v; want %q", inner, err, innerIf)
			}
		}
		// A plain-network endpoint: a MAC without the marker.
		plain := Endpoint{ID: epID(8), MAC: segment.RandomMAC(), Segment: segment.Default, MTU: 1400}
		if _, err := CreateEndpoint(testBridge, plain); err != nil {
			t.Fatal(err)
		}
		if ids, err := Endpoints(); err != nil || !slices.Equal(ids, []string{ep.ID, plain.ID}) {
			t.Errorf("Endpoints = %v, %v", ids, err)
		}
		if list, err := List(testBridge, nil); err != nil || len(list) != 0 {
			t.Errorf("List shows endpoints: %+v, %v", list, err)
		}
	})
	host := e.ipHost("-d", "link", "show", hostIf)
	for _, want := range []string{"alias weft-ep:" + ep.ID, "master " + testBridge, "mtu 1400", "UP"} {
		if !strings.Contains(host, want) {
			t.Errorf("host end lacks %q:\n%s", want, host)
		}
	}
	if inner := e.ipHost("link", "show", innerIf); !strings.Contains(inner, ep.MAC.String()) || !strings.Contains(inner, "mtu 1400") {
		t.Errorf("inner end:\n%s", inner)
	}
	for _, side := range []string{"ingress", "egress"} {
		if f := e.filters(hostIf, side); strings.Count(f, "direct-action") != 1 {
			t.Errorf("%s of %s: want one filter:\n%s", side, hostIf, f)
		}
	}

	// Docker has moved the inner end; a repeated create fixes the host
	// end only, and the bridge's MAC (in the egress rule) follows.
	c := e.container("ep")
	e.ipHost("link", "set", innerIf, "netns", c.Name)
	e.ipHost("link", "set", hostIf, "nomaster", "mtu", "1300")
	before := e.filters(hostIf, "egress")
	e.ipHost("link", "set", testBridge, "address", "02:00:00:00:77:01")
	e.do(func() {
		if _, err := CreateEndpoint(testBridge, ep); err != nil {
			t.Fatal(err)
		}
	})
	if host := e.ipHost("link", "show", hostIf); !strings.Contains(host, "master "+testBridge) || !strings.Contains(host, "mtu 1400") {
		t.Errorf("host end not repaired:\n%s", host)
	}
	if after := e.filters(hostIf, "egress"); after == before || strings.Count(after, "direct-action") != 1 {
		t.Errorf("egress filter after the bridge's MAC changed:\n%s\nbefore:\n%s", after, before)
	}

	e.do(func() {
		for range 2 {
			if err := DeleteEndpoint(ep.ID); err != nil {
				t.Fatal(err)
			}
		}
		if ids, err := Endpoints(); err != nil || !slices.Equal(ids, []string{epID(8)}) {
			t.Errorf("Endpoints after delete = %v, %v", ids, err)
		}
		if err := Reset(testBridge); err != nil {
			t.Fatal(err)
		}
		if ids, err := Endpoints(); err != nil || len(ids) != 0 {
			t.Errorf("Endpoints after Reset = %v, %v", ids, err)
		}
	})
	if hasLink(e.host, hostIf) || hasLink(c.Name, innerIf) {
		t.Error("DeleteEndpoint left a veth end")
	}
}
