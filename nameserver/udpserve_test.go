package nameserver

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// blockingUpstream never answers until released.
type blockingUpstream struct{ release chan struct{} }

func (b blockingUpstream) Exchange(ctx context.Context, m *dns.Msg, _ string) (*dns.Msg, error) {
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil, ctx.Err()
}

// TestUDPServerLocalAnswersDoNotWaitForUpstream: queries forwarded to an
// upstream that hangs do not hold up answers from the store, malformed
// queries get FORMERR, responses are ignored, and Stop returns.
func TestUDPServerLocalAnswersDoNotWaitForUpstream(t *testing.T) {
	up := blockingUpstream{release: make(chan struct{})}
	h, st := newTestHandler(t, HandlerConfig{Upstream: up, UpstreamTimeout: 10 * time.Second})
	if _, err := st.Add("c1.weft.local.", netip.MustParseAddr("10.32.0.1"), ""); err != nil {
		t.Fatal(err)
	}
	s := NewServer(h, nil)
	if err := s.Listen("127.0.0.1:0", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(up.release)
		s.Stop()
	}()
	c, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() *dns.Msg {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatalf("answer does not unpack: %v", err)
		}
		return m
	}
	for range 20 { // forwarded, hanging
		send(query("www.example.com.", dns.TypeA))
	}
	resp := new(dns.Msg)
	resp.SetQuestion("c1.weft.local.", dns.TypeA)
	resp.Response = true
	send(resp)                                                                  // ignored
	c.Write([]byte{0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xff}) // a question cut short
	if m := read(); m.Id != 0xabcd || m.Rcode != dns.RcodeFormatError || !m.Response {
		t.Fatalf("malformed query: got %v, want FORMERR with id 0xabcd", m)
	}
	q := query("C1.weft.local.", dns.TypeA)
	send(q)
	if m := read(); m.Id != q.Id || len(m.Answer) != 1 {
		t.Fatalf("local answer behind hanging forwards: %v", m)
	}
}
