package nameserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startUpstream runs a resolver on 127.0.0.1, UDP and TCP on the same port,
// that answers every A query with 192.0.2.1, and returns the port.
func startUpstream(t *testing.T) uint16 {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   net.IPv4(192, 0, 2, 1),
		})
		w.WriteMsg(m)
	})
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			pc.Close()
			continue
		}
		for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
			started := make(chan struct{})
			srv.NotifyStartedFunc = func() { close(started) }
			go srv.ActivateAndServe()
			<-started
			t.Cleanup(func() { srv.Shutdown() })
		}
		return uint16(port)
	}
	t.Fatal("no free port for UDP and TCP on 127.0.0.1")
	return 0
}

// TestServerRealSockets runs the server on 127.0.0.1 and queries it with
// the miekg/dns client over UDP and TCP.
func TestServerRealSockets(t *testing.T) {
	upPort := startUpstream(t)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	// 127.0.0.2 has no resolver: the forwarder must move on to 127.0.0.1.
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.2\nnameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	store := newTestStore(t, peerA, newFakeClock())
	mustAdd(t, store, "c1.weft.local.", "10.32.0.1", "netns:c1")
	for i := range 50 {
		mustAdd(t, store, "many.weft.local.", fmt.Sprintf("10.32.1.%d", i+1), "")
	}
	fwd := NewForwarder(ForwarderConfig{ResolvConf: resolv, Port: upPort})
	h, err := NewHandler(HandlerConfig{Store: store, Upstream: fwd, UpstreamTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, nil)
	if err := srv.Listen("127.0.0.1:0", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })

	ask := func(network, name string) *dns.Msg {
		t.Helper()
		addr := srv.UDPAddr().String()
		if network == "tcp" {
			addr = srv.TCPAddr().String()
		}
		c := &dns.Client{Net: network, Timeout: 5 * time.Second}
		resp, _, err := c.Exchange(query(name, dns.TypeA), addr)
		if err != nil {
			t.Fatalf("%s query %s: %v", network, name, err)
		}
		return resp
	}
	for _, network := range []string{"udp", "tcp"} {
		if got := answerAddrs(ask(network, "C1.weft.local.")); !slices.Equal(got, []string{"10.32.0.1"}) {
			t.Errorf("%s c1: %v", network, got)
		}
		if resp := ask(network, "nope.weft.local."); resp.Rcode != dns.RcodeNameError {
			t.Errorf("%s nope: %s", network, dns.RcodeToString[resp.Rcode])
		}
		if got := answerAddrs(ask(network, "www.example.com.")); !slices.Equal(got, []string{"192.0.2.1"}) {
			t.Errorf("%s forwarded: %v", network, got)
		}
	}
	udp := ask("udp", "many.weft.local.")
	if !udp.Truncated || len(udp.Answer) == 0 || len(udp.Answer) == 50 {
		t.Errorf("UDP: %d answers, TC %v; want some, truncated", len(udp.Answer), udp.Truncated)
	}
	if tcp := ask("tcp", "many.weft.local."); tcp.Truncated || len(tcp.Answer) != 50 {
		t.Errorf("TCP: %d answers, TC %v; want 50", len(tcp.Answer), tcp.Truncated)
	}
	if st := srv.Stats(); st.Queries != 8 || st.Forwarded != 2 || st.NXDomain != 2 || st.Truncated != 1 {
		t.Errorf("stats %+v", st)
	}

	cancel()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	c := &dns.Client{Net: "tcp", Timeout: time.Second}
	if _, _, err := c.Exchange(query("c1.weft.local.", dns.TypeA), srv.TCPAddr().String()); err == nil {
		t.Error("server still answers after Stop")
	}
}

func TestServerLifecycleErrors(t *testing.T) {
	h, _ := newTestHandler(t, HandlerConfig{})
	srv := NewServer(h, nil)
	if err := srv.Start(context.Background()); err == nil {
		t.Fatal("Start before Listen succeeded")
	}
	if err := srv.Listen("127.0.0.1:0", ""); err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen("127.0.0.1:0", ""); err == nil {
		t.Fatal("second Listen succeeded")
	}
	if err := srv.Stop(); err != nil { // before Start: closes the socket
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
	busy := NewServer(h, nil)
	if err := busy.Listen("127.0.0.1:0", "256.0.0.1:53"); err == nil {
		t.Fatal("Listen on a bad TCP address succeeded")
	}
	if busy.UDPAddr() != nil {
		t.Fatal("UDP socket left bound after a failed Listen")
	}
}
