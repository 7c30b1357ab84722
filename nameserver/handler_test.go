package nameserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// fakeWriter is a dns.ResponseWriter that records what the handler writes.
type fakeWriter struct {
	tcp    bool
	remote net.Addr
	msgs   []*dns.Msg
	sizes  []int
}

func (w *fakeWriter) LocalAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(10, 32, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(10, 32, 0, 1), Port: 53}
}

func (w *fakeWriter) RemoteAddr() net.Addr {
	if w.remote != nil {
		return w.remote
	}
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(10, 32, 0, 9), Port: 40000}
	}
	return &net.UDPAddr{IP: net.IPv4(10, 32, 0, 9), Port: 40000}
}

func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	w.msgs = append(w.msgs, m)
	w.sizes = append(w.sizes, len(b))
	return nil
}

func (w *fakeWriter) Write(b []byte) (int, error) { return 0, errors.New("fakeWriter: raw write") }
func (w *fakeWriter) Close() error                { return nil }
func (w *fakeWriter) TsigStatus() error           { return nil }
func (w *fakeWriter) TsigTimersOnly(bool)         {}
func (w *fakeWriter) Hijack()                     {}

// fakeUpstream answers forwarded queries from a table, or fails.
type fakeUpstream struct {
	mu      sync.Mutex
	fail    bool
	queries []string
}

func (u *fakeUpstream) Exchange(ctx context.Context, m *dns.Msg, network string) (*dns.Msg, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.queries = append(u.queries, network+" "+m.Question[0].Name)
	if u.fail {
		return nil, errors.New("upstream unreachable")
	}
	r := new(dns.Msg)
	r.SetReply(m)
	if m.Question[0].Name == "nx.example.com." {
		r.Rcode = dns.RcodeNameError
		return r, nil
	}
	r.Answer = append(r.Answer, &dns.A{
		Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
		A:   net.IPv4(192, 0, 2, 1),
	})
	return r, nil
}

func newTestHandler(t testing.TB, cfg HandlerConfig) (*Handler, *Store) {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = newTestStore(t, peerA, newFakeClock())
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h, cfg.Store
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// serve runs one query through h and returns the single answer written.
func serve(t testing.TB, h *Handler, w *fakeWriter, m *dns.Msg) *dns.Msg {
	t.Helper()
	h.ServeDNS(w, m)
	if len(w.msgs) != 1 {
		t.Fatalf("%d answers written, want 1", len(w.msgs))
	}
	return w.msgs[0]
}

func answerAddrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

func TestHandlerLocalAnswers(t *testing.T) {
	up := &fakeUpstream{}
	h, s := newTestHandler(t, HandlerConfig{Upstream: up})
	mustAdd(t, s, "SeeOne.weft.local.", "10.32.0.78", "netns:c1")
	mustAdd(t, s, "db.weft.local.", "10.32.0.78", "netns:c1")

	for _, tc := range []struct {
		desc   string
		name   string
		qtype  uint16
		rcode  int
		answer []string
		soa    bool
	}{
		{"A", "seeone.weft.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.32.0.78"}, false},
		{"A upper case", "SEEONE.WEFT.LOCAL.", dns.TypeA, dns.RcodeSuccess, []string{"10.32.0.78"}, false},
		{"A single label", "seeone.", dns.TypeA, dns.RcodeSuccess, []string{"10.32.0.78"}, false},
		{"AAAA of existing name", "seeone.weft.local.", dns.TypeAAAA, dns.RcodeSuccess, nil, true},
		{"MX of existing name", "seeone.weft.local.", dns.TypeMX, dns.RcodeSuccess, nil, true},
		{"unknown name", "nope.weft.local.", dns.TypeA, dns.RcodeNameError, nil, true},
		{"unknown name AAAA", "nope.weft.local.", dns.TypeAAAA, dns.RcodeNameError, nil, true},
		{"apex", "weft.local.", dns.TypeA, dns.RcodeSuccess, nil, true},
		{"ANY gives one record", "seeone.weft.local.", dns.TypeANY, dns.RcodeSuccess, []string{"10.32.0.78"}, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			w := &fakeWriter{}
			resp := serve(t, h, w, query(tc.name, tc.qtype))
			if resp.Rcode != tc.rcode || !resp.Authoritative || !resp.Response {
				t.Fatalf("rcode %s AA %v QR %v, want %s AA QR", dns.RcodeToString[resp.Rcode], resp.Authoritative, resp.Response, dns.RcodeToString[tc.rcode])
			}
			if got := answerAddrs(resp); !slices.Equal(got, tc.answer) {
				t.Errorf("answer %v, want %v", got, tc.answer)
			}
			for _, rr := range resp.Answer {
				if rr.Header().Ttl != DefaultTTL || rr.Header().Name != tc.name {
					t.Errorf("answer record %v: want TTL %d and owner %s", rr, DefaultTTL, tc.name)
				}
			}
			hasSOA := len(resp.Ns) == 1 && resp.Ns[0].Header().Rrtype == dns.TypeSOA
			if hasSOA != tc.soa {
				t.Errorf("authority %v, want SOA: %v", resp.Ns, tc.soa)
			}
			if len(up.queries) != 0 {
				t.Errorf("local name forwarded: %v", up.queries)
			}
		})
	}
}

func TestHandlerPTR(t *testing.T) {
	up := &fakeUpstream{}
	h, s := newTestHandler(t, HandlerConfig{Upstream: up})
	mustAdd(t, s, "SeeOne.weft.local.", "10.32.0.78", "netns:c1")
	for _, name := range []string{"78.0.32.10.in-addr.arpa.", "78.0.32.10.IN-ADDR.ARPA."} {
		resp := serve(t, h, &fakeWriter{}, query(name, dns.TypePTR))
		if len(resp.Answer) != 1 || resp.Answer[0].(*dns.PTR).Ptr != "SeeOne.weft.local." || !resp.Authoritative {
			t.Errorf("PTR %s: %v", name, resp)
		}
	}
	for _, name := range []string{"79.0.32.10.in-addr.arpa.", "0.32.10.in-addr.arpa.", "x.0.32.10.in-addr.arpa."} {
		resp := serve(t, h, &fakeWriter{}, query(name, dns.TypePTR))
		if resp.Authoritative || len(up.queries) == 0 || up.queries[len(up.queries)-1] != "udp "+name {
			t.Errorf("PTR %s not forwarded: %v, upstream saw %v", name, resp, up.queries)
		}
	}
}

func TestHandlerRotation(t *testing.T) {
	h, s := newTestHandler(t, HandlerConfig{})
	for i := 1; i <= 3; i++ {
		mustAdd(t, s, "web.weft.local.", fmt.Sprintf("10.32.0.%d", i), fmt.Sprintf("netns:c%d", i))
	}
	firsts := map[string]bool{}
	for range 3 {
		got := answerAddrs(serve(t, h, &fakeWriter{}, query("web.weft.local.", dns.TypeA)))
		if len(got) != 3 {
			t.Fatalf("answer %v, want 3 addresses", got)
		}
		firsts[got[0]] = true
		slices.Sort(got)
		if !slices.Equal(got, []string{"10.32.0.1", "10.32.0.2", "10.32.0.3"}) {
			t.Fatalf("answer %v", got)
		}
	}
	if len(firsts) != 3 {
		t.Errorf("three queries started with %v, want every address once", firsts)
	}
}

func TestHandlerCustomDomain(t *testing.T) {
	h, s := newTestHandler(t, HandlerConfig{Domain: "Foo.Bar", TTL: 7})
	if h.Domain() != "foo.bar." {
		t.Fatalf("domain %q", h.Domain())
	}
	mustAdd(t, s, "seetwo.foo.bar.", "10.32.0.2", "")
	resp := serve(t, h, &fakeWriter{}, query("seetwo.foo.bar.", dns.TypeA))
	if got := answerAddrs(resp); len(got) != 1 || resp.Answer[0].Header().Ttl != 7 {
		t.Fatalf("answer %v", resp)
	}
}

func TestHandlerTruncation(t *testing.T) {
	h, s := newTestHandler(t, HandlerConfig{})
	for i := range 50 {
		mustAdd(t, s, "many.weft.local.", fmt.Sprintf("10.32.1.%d", i+1), "")
	}
	for _, tc := range []struct {
		desc    string
		tcp     bool
		edns    uint16
		maxSize int
		full    bool
	}{
		{"udp", false, 0, 512, false},
		{"udp edns 700", false, 700, 700, false},
		{"udp edns 65000 capped", false, 65000, MaxUDPSize, true},
		{"tcp", true, 0, dns.MaxMsgSize, true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			m := query("many.weft.local.", dns.TypeA)
			if tc.edns != 0 {
				m.SetEdns0(tc.edns, false)
			}
			w := &fakeWriter{tcp: tc.tcp}
			resp := serve(t, h, w, m)
			if w.sizes[0] > tc.maxSize {
				t.Errorf("answer of %d bytes, limit %d", w.sizes[0], tc.maxSize)
			}
			n := len(answerAddrs(resp))
			if tc.full != (n == 50) || resp.Truncated == tc.full {
				t.Errorf("%d addresses, TC %v; want all: %v", n, resp.Truncated, tc.full)
			}
			if n == 0 {
				t.Error("truncated to nothing")
			}
		})
	}
}

func TestHandlerForwarding(t *testing.T) {
	up := &fakeUpstream{}
	h, _ := newTestHandler(t, HandlerConfig{Upstream: up, ForwardFrom: []netip.Prefix{netip.MustParsePrefix("10.32.0.0/12")}})

	m := query("WWW.Example.COM.", dns.TypeA)
	m.Id = 4242
	resp := serve(t, h, &fakeWriter{tcp: true}, m)
	if resp.Id != 4242 || resp.Rcode != dns.RcodeSuccess || resp.Question[0].Name != "WWW.Example.COM." || len(resp.Answer) != 1 {
		t.Fatalf("forwarded answer %v", resp)
	}
	if up.queries[0] != "tcp WWW.Example.COM." {
		t.Errorf("upstream saw %v", up.queries)
	}
	if resp := serve(t, h, &fakeWriter{}, query("nx.example.com.", dns.TypeA)); resp.Rcode != dns.RcodeNameError {
		t.Errorf("upstream NXDOMAIN became %s", dns.RcodeToString[resp.Rcode])
	}
	// A single label unknown locally goes upstream too.
	serve(t, h, &fakeWriter{}, query("localhost.", dns.TypeA))
	if last := up.queries[len(up.queries)-1]; last != "udp localhost." {
		t.Errorf("single label not forwarded: %v", up.queries)
	}

	outside := &fakeWriter{remote: &net.UDPAddr{IP: net.IPv4(192, 168, 1, 5), Port: 5353}}
	if resp := serve(t, h, outside, query("www.example.com.", dns.TypeA)); resp.Rcode != dns.RcodeRefused {
		t.Errorf("client outside the weft range got %s, want REFUSED", dns.RcodeToString[resp.Rcode])
	}

	up.fail = true
	if resp := serve(t, h, &fakeWriter{}, query("www.example.com.", dns.TypeA)); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("upstream failure gave %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	noUp, _ := newTestHandler(t, HandlerConfig{})
	if resp := serve(t, noUp, &fakeWriter{}, query("www.example.com.", dns.TypeA)); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("no upstream gave %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	st := h.Stats()
	if st.Forwarded != 4 || st.ForwardFailed != 1 || st.Refused != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestHandlerMalformed(t *testing.T) {
	h, _ := newTestHandler(t, HandlerConfig{})
	two := query("a.weft.local.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	none := query("a.weft.local.", dns.TypeA)
	none.Question = nil
	for _, tc := range []struct {
		desc  string
		m     *dns.Msg
		rcode int
	}{
		{"two questions", two, dns.RcodeFormatError},
		{"no question", none, dns.RcodeFormatError},
		{"update", func() *dns.Msg { m := query("a.weft.local.", dns.TypeA); m.Opcode = dns.OpcodeUpdate; return m }(), dns.RcodeNotImplemented},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			resp := serve(t, h, &fakeWriter{}, tc.m)
			if resp.Rcode != tc.rcode || len(resp.Answer)+len(resp.Question) != 0 {
				t.Errorf("got %v, want rcode %s and nothing else", resp, dns.RcodeToString[tc.rcode])
			}
		})
	}
	resp := query("a.weft.local.", dns.TypeA)
	resp.Response = true
	w := &fakeWriter{}
	h.ServeDNS(w, resp)
	if len(w.msgs) != 0 {
		t.Errorf("answered a response: %v", w.msgs)
	}
}

func TestHandlerStats(t *testing.T) {
	h, s := newTestHandler(t, HandlerConfig{})
	mustAdd(t, s, "a.weft.local.", "10.32.0.1", "")
	serve(t, h, &fakeWriter{}, query("a.weft.local.", dns.TypeA))
	serve(t, h, &fakeWriter{}, query("b.weft.local.", dns.TypeA))
	if st := h.Stats(); st.Queries != 2 || st.Local != 2 || st.NXDomain != 1 {
		t.Errorf("stats %+v", st)
	}
}

// bigUpstream answers every query with 200 A records.
type bigUpstream struct{}

func (bigUpstream) Exchange(ctx context.Context, m *dns.Msg, network string) (*dns.Msg, error) {
	r := new(dns.Msg)
	r.SetReply(m)
	for i := range 200 {
		r.Answer = append(r.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   net.IPv4(192, 0, 2, byte(i)),
		})
	}
	return r, nil
}
