package nameserver

import (
	"fmt"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// discardWriter is a ResponseWriter that drops answers without packing them.
type discardWriter struct{ fakeWriter }

func (discardWriter) WriteMsg(*dns.Msg) error { return nil }

// BenchmarkServeLocalA measures answering an A query for a local name with
// three addresses in a store of 1,000 names, from the parsed query to the
// built answer (packing and the socket are miekg/dns's and the kernel's).
func BenchmarkServeLocalA(b *testing.B) {
	h, s := newTestHandler(b, HandlerConfig{})
	for i := range 1000 {
		mustAdd(b, s, fmt.Sprintf("c%d.weft.local.", i), fmt.Sprintf("10.32.%d.%d", i/250, 1+i%250), "")
	}
	for i := range 3 {
		mustAdd(b, s, "web.weft.local.", fmt.Sprintf("10.33.0.%d", i+1), "")
	}
	q := query("web.weft.local.", dns.TypeA)
	w := &discardWriter{fakeWriter{remote: &net.UDPAddr{IP: net.IPv4(10, 32, 0, 9), Port: 1}}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeDNS(w, q)
	}
}

// BenchmarkServeLocalAPacked is BenchmarkServeLocalA including unpacking
// the query and packing the answer, as the server does per datagram.
func BenchmarkServeLocalAPacked(b *testing.B) {
	h, s := newTestHandler(b, HandlerConfig{})
	for i := range 3 {
		mustAdd(b, s, "web.weft.local.", fmt.Sprintf("10.33.0.%d", i+1), "")
	}
	raw, err := query("web.weft.local.", dns.TypeA).Pack()
	if err != nil {
		b.Fatal(err)
	}
	w := &packWriter{buf: make([]byte, 0, 512)}
	b.ReportAllocs()
	for b.Loop() {
		m := new(dns.Msg)
		if err := m.Unpack(raw); err != nil {
			b.Fatal(err)
		}
		h.ServeDNS(w, m)
	}
}

type packWriter struct {
	discardWriter
	buf []byte
}

func (w *packWriter) WriteMsg(m *dns.Msg) error {
	_, err := m.PackBuffer(w.buf[:cap(w.buf)])
	return err
}
