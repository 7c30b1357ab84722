package nameserver

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func TestSetForwardFromChangesWhoMayRecurse(t *testing.T) {
	h, _ := newTestHandler(t, HandlerConfig{Upstream: &fakeUpstream{}, ForwardFrom: []netip.Prefix{netip.MustParsePrefix("10.32.0.0/12")}})
	client := &fakeWriter{remote: &net.UDPAddr{IP: net.IPv4(10, 2, 1, 5), Port: 5353}}
	rcode := func() int {
		return serve(t, h, &fakeWriter{remote: client.remote}, query("www.example.com.", dns.TypeA)).Rcode
	}
	if got := rcode(); got != dns.RcodeRefused {
		t.Fatalf("before: %s, want REFUSED", dns.RcodeToString[got])
	}
	h.SetForwardFrom([]netip.Prefix{netip.MustParsePrefix("10.32.0.0/12"), netip.MustParsePrefix("10.2.1.0/24")})
	if got := rcode(); got != dns.RcodeSuccess {
		t.Fatalf("after adding 10.2.1.0/24: %s, want NOERROR", dns.RcodeToString[got])
	}
	h.SetForwardFrom([]netip.Prefix{netip.MustParsePrefix("10.32.0.0/12")})
	if got := rcode(); got != dns.RcodeRefused {
		t.Fatalf("after removing it: %s, want REFUSED", dns.RcodeToString[got])
	}
	loop := &fakeWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
	if got := serve(t, h, loop, query("www.example.com.", dns.TypeA)).Rcode; got != dns.RcodeSuccess {
		t.Errorf("loopback: %s, want NOERROR", dns.RcodeToString[got])
	}
}

func TestListenUDPBindsSeveralSocketsOnOnePort(t *testing.T) {
	pcs, err := listenUDP("127.0.0.1:0", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, pc := range pcs {
			pc.Close()
		}
	}()
	if len(pcs) != 3 {
		t.Fatalf("%d sockets, want 3", len(pcs))
	}
	for _, pc := range pcs[1:] {
		if pc.LocalAddr().String() != pcs[0].LocalAddr().String() {
			t.Errorf("socket on %s, first on %s", pc.LocalAddr(), pcs[0].LocalAddr())
		}
	}
	// Another listener without SO_REUSEPORT cannot take the port.
	if pc, err := net.ListenPacket("udp", pcs[0].LocalAddr().String()); err == nil {
		pc.Close()
		t.Error("a plain socket could bind the server's port")
	}
}
