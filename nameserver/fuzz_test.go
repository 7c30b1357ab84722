package nameserver

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

// FuzzServeDNS feeds arbitrary bytes, as a DNS message, to the handler over
// UDP and TCP. It must not panic, must answer at most once, and over UDP
// must never answer with more than the client's limit (512 bytes, or its
// EDNS0 size up to MaxUDPSize): no amplification.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"many.weft.local.", dns.TypeA},
		{"MANY.weft.local.", dns.TypeANY},
		{"c1.", dns.TypeA},
		{"1.1.32.10.in-addr.arpa.", dns.TypePTR},
		{"nope.weft.local.", dns.TypeMX},
		{"www.example.com.", dns.TypeA},
	} {
		m := query(q.name, q.qtype)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		m.SetEdns0(4096, true)
		if b, err = m.Pack(); err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
	}
	store := newTestStore(f, peerA, newFakeClock())
	for i := range 50 {
		mustAdd(f, store, "many.weft.local.", fmt.Sprintf("10.32.1.%d", i+1), "")
		mustAdd(f, store, fmt.Sprintf("alias%d.weft.local.", i), "10.32.1.1", "")
	}
	mustAdd(f, store, "c1.weft.local.", "10.32.0.1", "")
	h, _ := newTestHandler(f, HandlerConfig{Store: store, Upstream: bigUpstream{}})

	f.Fuzz(func(t *testing.T, b []byte, tcp bool) {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			return
		}
		w := &fakeWriter{tcp: tcp}
		h.ServeDNS(w, m)
		if len(w.msgs) > 1 {
			t.Fatalf("%d answers to one query", len(w.msgs))
		}
		if len(w.msgs) == 1 && !tcp && w.sizes[0] > udpLimit(m) {
			t.Fatalf("UDP answer of %d bytes to a %d-byte query (limit %d)", w.sizes[0], len(b), udpLimit(m))
		}
	})
}
