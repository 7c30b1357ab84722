package nameserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestParseResolvConf(t *testing.T) {
	data := []byte("# comment\nsearch example.com\nnameserver 192.0.2.1\nnameserver  ::ffff:192.0.2.2 \n" +
		"nameserver fe80::1%eth0\nnameserver bogus\nnameserver\noptions ndots:2\nnameserver 2001:db8::1\n")
	got := ParseResolvConf(data)
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::1")}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestForwarderRereadsAndSkipsSelf(t *testing.T) {
	clock := newFakeClock()
	path := filepath.Join(t.TempDir(), "resolv.conf")
	write := func(s string, mod time.Time) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	write("nameserver 10.32.0.1\nnameserver 192.0.2.1\n", clock.Now())
	f := NewForwarder(ForwarderConfig{ResolvConf: path, Now: clock.Now,
		Self: []netip.AddrPort{netip.MustParseAddrPort("10.32.0.1:53")}})
	servers := func() []string {
		t.Helper()
		s, err := f.Servers()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range s {
			out = append(out, a.String())
		}
		return out
	}
	if got := servers(); !slices.Equal(got, []string{"192.0.2.1:53"}) {
		t.Fatalf("servers %v (own address must be skipped)", got)
	}
	write("nameserver 192.0.2.7\n", clock.Now().Add(time.Minute))
	if got := servers(); !slices.Equal(got, []string{"192.0.2.1:53"}) {
		t.Fatalf("re-read before the recheck interval: %v", got)
	}
	clock.Advance(DefaultRecheckInterval)
	if got := servers(); !slices.Equal(got, []string{"192.0.2.7:53"}) {
		t.Fatalf("change not picked up: %v", got)
	}
	os.Remove(path)
	clock.Advance(DefaultRecheckInterval)
	if _, err := f.Servers(); err == nil {
		t.Fatal("missing file gave no error")
	}
	_, err := f.Exchange(context.Background(), query("www.example.com.", dns.TypeA), "udp")
	if err == nil {
		t.Fatal("Exchange without a resolv.conf succeeded")
	}
}

func TestForwarderNoServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := NewForwarder(ForwarderConfig{ResolvConf: path, Self: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:53")}})
	_, err := f.Exchange(context.Background(), query("www.example.com.", dns.TypeA), "udp")
	if !errors.Is(err, ErrNoUpstream) {
		t.Fatalf("error %v, want ErrNoUpstream (loopback is us when we listen on 0.0.0.0:53)", err)
	}
}

// TestForwarderSkipsSilentServer puts a resolver that never answers first:
// the per-server timeout leaves time for the second.
func TestForwarderSkipsSilentServer(t *testing.T) {
	port := startUpstream(t)
	silent, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.3:%d", port))
	if err != nil {
		t.Fatalf("bind a silent resolver: %v", err)
	}
	defer silent.Close()
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("nameserver 127.0.0.3\nnameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := NewForwarder(ForwarderConfig{ResolvConf: path, Port: port, Timeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	reply, err := f.Exchange(ctx, query("www.example.com.", dns.TypeA), "udp")
	if err != nil {
		t.Fatal(err)
	}
	if got := answerAddrs(reply); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Fatalf("answer %v", got)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
}
