package daemon

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/router/routertest"
)

func ipamHeld(t *testing.T, tr *testRouter) uint64 {
	t.Helper()
	rep := tr.report(t)
	if rep.IPAM == nil || len(rep.IPAM.Pools) == 0 {
		t.Fatalf("report has no IPAM: %+v", rep.IPAM)
	}
	return rep.IPAM.Pools[0].Held
}

func attachAddrs(t *testing.T, tr *testRouter, target string, cidrs ...string) []string {
	t.Helper()
	addrs, err := tr.client.Attach(control.AttachRequest{Target: target, CIDRs: cidrs})
	if err != nil {
		t.Fatalf("attach %s %v: %v", target, cidrs, err)
	}
	return addrs
}

// TestIPAMAttachDetachGraceRestart: a lone router allocates at once; the
// same target keeps its address; a vanished target's address is freed after
// the grace period; a restart keeps the rest; detach frees.
func TestIPAMAttachDetachGraceRestart(t *testing.T) {
	nw := routertest.NewNetwork(11)
	dir, host := t.TempDir(), newFakeHost()
	mod := func(c *Config) {
		c.IPAllocRange = netip.MustParsePrefix("10.40.0.0/24")
		c.IPAMGrace, c.ipamTick = 200*time.Millisecond, 50*time.Millisecond
	}
	r := startRouterWith(t, nw, dir, host, 7001, mod)
	if got := attachAddrs(t, r, "netns:c1"); len(got) != 1 || got[0] != "10.40.0.1/24" {
		t.Fatalf("first automatic address = %v, want [10.40.0.1/24]", got)
	}
	if got := attachAddrs(t, r, "netns:c2", "net:default"); got[0] != "10.40.0.2/24" {
		t.Fatalf("second = %v", got)
	}
	if got := attachAddrs(t, r, "netns:c1"); got[0] != "10.40.0.1/24" {
		t.Fatalf("c1 attached again got %v, want its address back", got)
	}
	if got := attachAddrs(t, r, "netns:c4", "net:10.40.0.128/25"); got[0] != "10.40.0.129/25" {
		t.Fatalf("net:10.40.0.128/25 gave %v", got)
	}
	if got := attachAddrs(t, r, "netns:c5", "ip:10.40.0.77/24"); got[0] != "10.40.0.77/24" {
		t.Fatalf("ip:10.40.0.77/24 gave %v", got)
	}
	if n := ipamHeld(t, r); n != 4 {
		t.Fatalf("held = %d, want 4", n)
	}
	if p := r.report(t).IPAM.Pools[0].Peers; len(p) != 1 || p[0].Used != 4 || p[0].Owned != 256 || !p[0].Self {
		t.Fatalf("status of the one owner: %+v, want 256 owned, 4 used", p)
	}

	host.vanish("netns:c1")
	deadline := time.Now().Add(5 * time.Second)
	for ipamHeld(t, r) != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("a vanished target's address was not freed after the grace period: %+v", r.report(t).IPAM)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, a := range r.report(t).Attachments {
		if a.Target == "netns:c1" {
			t.Fatalf("vanished target still recorded: %+v", a)
		}
	}
	if got := attachAddrs(t, r, "netns:c3"); got[0] != "10.40.0.1/24" {
		t.Fatalf("after c1's address was freed, c3 got %v, want 10.40.0.1/24", got)
	}

	r.stop()
	r = startRouterWith(t, nw, dir, host, 7001, mod)
	if n := ipamHeld(t, r); n != 4 {
		t.Fatalf("after a restart held = %d, want 4", n)
	}
	if got := attachAddrs(t, r, "netns:c6"); got[0] != "10.40.0.3/24" {
		t.Fatalf("after a restart a new target got %v, want 10.40.0.3/24", got)
	}
	if _, err := r.client.Detach(control.AttachRequest{Target: "netns:c2"}); err != nil {
		t.Fatal(err)
	}
	if got := attachAddrs(t, r, "netns:c7"); got[0] != "10.40.0.2/24" {
		t.Fatalf("after detaching c2, c7 got %v, want c2's 10.40.0.2/24", got)
	}
	view, err := r.client.StatusView("ipam")
	if err != nil || !strings.Contains(view, "state: ready") || !strings.Contains(view, "this router") {
		t.Fatalf("status ipam: %v\n%s", err, view)
	}
}

// TestIPAMBadRequests: each bad request is a user error with one line and
// changes nothing.
func TestIPAMBadRequests(t *testing.T) {
	nw := routertest.NewNetwork(12)
	r := startRouterWith(t, nw, t.TempDir(), newFakeHost(), 7002, func(c *Config) {
		c.IPAllocRange = netip.MustParsePrefix("10.40.0.0/24")
	})
	attachAddrs(t, r, "netns:c1")
	for _, tc := range []struct {
		cidrs []string
		want  string
	}{
		{[]string{"net:10.99.0.0/24"}, "not inside the IP allocation range"},
		{[]string{"net:10.40.0.4/31"}, "subnet too small"},
		{[]string{"net:10.40.0.4/24"}, "host bits are set"},
		{[]string{"net:banana"}, "want net:CIDR"},
		{[]string{"ip:10.40.0.1/24"}, "already in use by netns:c1 on this host"},
		{[]string{"10.40.0.0/24"}, "network address"},
		{[]string{"ip:10.40.0.255/16"}, "network or broadcast address of the pool 10.40.0.0/24"},
	} {
		_, err := r.client.Attach(control.AttachRequest{Target: "netns:c2", CIDRs: tc.cidrs})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("attach %v: err %v, want one line containing %q", tc.cidrs, err, tc.want)
		}
	}
	for _, peer := range []string{"nosuch", "7a:00:00:00:00:09"} {
		if _, err := r.client.RmPeer(peer); err == nil {
			t.Errorf("rmpeer %s: no error", peer)
		}
	}
	rep := r.report(t)
	if len(rep.Attachments) != 1 || rep.IPAM.Pools[0].Held != 1 {
		t.Fatalf("bad requests changed state: %d attachments, %d held", len(rep.Attachments), rep.IPAM.Pools[0].Held)
	}
	name := rep.Router.Name
	if _, err := r.client.RmPeer(name); err == nil || !strings.Contains(err.Error(), "this router") {
		t.Errorf("rmpeer of ourselves: %v", err)
	}
}

// TestIPAMExpose: expose with no address allocates one for the host, which
// no target then gets; hide gives it back.
func TestIPAMExpose(t *testing.T) {
	nw := routertest.NewNetwork(13)
	r := startRouterWith(t, nw, t.TempDir(), newFakeHost(), 7003, func(c *Config) {
		c.IPAllocRange = netip.MustParsePrefix("10.40.0.0/24")
	})
	got, err := r.client.Expose(nil)
	if err != nil || len(got) != 1 || got[0] != "10.40.0.1/24" {
		t.Fatalf("expose with no address = %v, %v; want [10.40.0.1/24]", got, err)
	}
	if a := attachAddrs(t, r, "netns:c1"); a[0] != "10.40.0.2/24" {
		t.Fatalf("attach after expose got %v, want 10.40.0.2/24", a)
	}
	if _, err := r.client.Attach(control.AttachRequest{Target: "netns:c2", CIDRs: []string{"ip:10.40.0.1/24"}}); err == nil || !strings.Contains(err.Error(), "weft:expose") {
		t.Fatalf("claiming the exposed address: %v", err)
	}
	if _, err := r.client.Hide(nil); err != nil {
		t.Fatal(err)
	}
	if a := attachAddrs(t, r, "netns:c3"); a[0] != "10.40.0.1/24" {
		t.Fatalf("after hide the host's address went to %v, want 10.40.0.1/24 free again", a)
	}
}

// TestIPAMMetrics: /metrics carries per pool and peer the addresses owned
// and used, and per pool those held here.
func TestIPAMMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	nw := routertest.NewNetwork(14)
	r := startRouterWith(t, nw, t.TempDir(), newFakeHost(), 7004, func(c *Config) {
		c.IPAllocRange = netip.MustParsePrefix("10.40.0.0/24")
		c.StatusAddr = addr
	})
	attachAddrs(t, r, "netns:c1")
	attachAddrs(t, r, "netns:c2")
	name := r.report(t).Router.Name
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		fmt.Sprintf(`weft_ipam_owned_addresses{nickname="r7004",peer=%q,pool="10.40.0.0/24"} 256`, name),
		fmt.Sprintf(`weft_ipam_used_addresses{nickname="r7004",peer=%q,pool="10.40.0.0/24"} 2`, name),
		`weft_ipam_held_addresses{pool="10.40.0.0/24"} 2`,
		`weft_ipam_conflicts{pool="10.40.0.0/24"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
