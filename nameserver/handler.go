package nameserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

const (
	// DefaultDomain is the domain weft answers for unless configured otherwise.
	DefaultDomain = "weft.local."
	// DefaultTTL is the TTL, in seconds, of local answers.
	DefaultTTL = 1
	// DefaultUpstreamTimeout bounds one forwarded query, all upstreams included.
	DefaultUpstreamTimeout = 5 * time.Second
	// MaxUDPSize is the largest UDP answer sent, whatever a client's EDNS0
	// buffer size says; larger answers are truncated with TC set.
	MaxUDPSize = 1232
)

// Exchanger sends a query to upstream resolvers and returns the answer. It is
// called concurrently from ServeDNS; it must not modify m, and the returned
// message becomes the caller's. network is "udp" or "tcp", the transport the
// client used.
type Exchanger interface {
	Exchange(ctx context.Context, m *dns.Msg, network string) (*dns.Msg, error)
}

// HandlerConfig configures a Handler.
type HandlerConfig struct {
	// Store holds the records answered from. Required.
	Store *Store
	// Domain is the domain answered locally, with or without a trailing
	// dot; empty means DefaultDomain.
	Domain string
	// TTL of local answers in seconds; zero means DefaultTTL.
	TTL uint32
	// Upstream answers names outside the domain; nil means such queries get
	// SERVFAIL.
	Upstream Exchanger
	// UpstreamTimeout bounds one forwarded query; zero means DefaultUpstreamTimeout.
	UpstreamTimeout time.Duration
	// ForwardFrom, if not empty, limits forwarding to clients in these
	// prefixes (the weft range): others get REFUSED for names outside the
	// domain, so the server is never an open resolver. Local answers are
	// given to anyone who reaches the socket.
	ForwardFrom []netip.Prefix
	// Logger receives upstream failures at debug level; nil means discard.
	Logger *slog.Logger
}

// Handler answers DNS queries: names in the domain and reverse lookups of
// weft addresses from the store, everything else through the upstream
// Exchanger. It implements dns.Handler and is safe for concurrent use.
type Handler struct {
	store       *Store
	domain      string
	ttl         uint32
	upstream    Exchanger
	timeout     time.Duration
	forwardFrom atomic.Pointer[[]netip.Prefix]
	log         *slog.Logger
	soaNS       string
	soaMbox     string
	rotation    atomic.Uint32
	stats       counters
}

// NewHandler returns a handler answering from cfg.Store.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("new DNS handler: no store")
	}
	domain := cfg.Domain
	if domain == "" {
		domain = DefaultDomain
	}
	domain, err := NormalizeDomain(domain)
	if err != nil {
		return nil, fmt.Errorf("new DNS handler: %w", err)
	}
	h := &Handler{
		store:    cfg.Store,
		domain:   domain,
		ttl:      cfg.TTL,
		upstream: cfg.Upstream,
		timeout:  cfg.UpstreamTimeout,
		log:      cfg.Logger,
		soaNS:    "ns." + domain,
		soaMbox:  "hostmaster." + domain,
	}
	h.SetForwardFrom(cfg.ForwardFrom)
	if h.ttl == 0 {
		h.ttl = DefaultTTL
	}
	if h.timeout <= 0 {
		h.timeout = DefaultUpstreamTimeout
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// SetForwardFrom replaces HandlerConfig.ForwardFrom, for a router whose
// attached ranges change. An empty list lets every client recurse. It may be
// called concurrently with ServeDNS; ps must not be changed afterwards.
func (h *Handler) SetForwardFrom(ps []netip.Prefix) { h.forwardFrom.Store(&ps) }

// Domain returns the domain answered locally, lower case with a trailing dot.
func (h *Handler) Domain() string { return h.domain }

// ServeDNS answers one query. Responses (QR set) are ignored; a message
// without exactly one question gets FORMERR. Over UDP the answer is cut to
// 512 bytes, or the client's EDNS0 size up to MaxUDPSize, with TC set when
// records were left out; over TCP it is complete.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	h.stats.queries.Add(1)
	if r == nil || r.Response {
		h.stats.malformed.Add(1)
		return
	}
	network := networkOf(w)
	resp := h.respond(r, network, w.RemoteAddr())
	if network == "udp" {
		resp.Truncate(udpLimit(r))
		if resp.Truncated {
			h.stats.truncated.Add(1)
		}
	} else {
		resp.Compress = true
	}
	qtype := uint16(0)
	if len(r.Question) == 1 {
		qtype = r.Question[0].Qtype
	}
	h.stats.answered(qtype, resp.Rcode)
	if err := w.WriteMsg(resp); err != nil {
		h.log.Debug("dns: write answer", "client", w.RemoteAddr(), "err", err)
	}
}

// respond builds the answer to r.
func (h *Handler) respond(r *dns.Msg, network string, client net.Addr) *dns.Msg {
	resp := new(dns.Msg)
	if r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 {
		h.stats.malformed.Add(1)
		resp.MsgHdr = dns.MsgHdr{Id: r.Id, Response: true, Opcode: r.Opcode, Rcode: dns.RcodeFormatError}
		if r.Opcode != dns.OpcodeQuery {
			resp.Rcode = dns.RcodeNotImplemented
		}
		return resp
	}
	resp.SetReply(r)
	resp.RecursionAvailable = true
	if opt := r.IsEdns0(); opt != nil {
		resp.SetEdns0(MaxUDPSize, false)
	}
	q := r.Question[0]
	name := strings.ToLower(dns.Fqdn(q.Name))
	switch {
	case dns.IsSubDomain(h.domain, name):
		h.answerLocal(resp, q, name)
		return resp
	case dns.CountLabel(name) == 1 && h.hasName(name+h.domain):
		// A resolver that does not apply the search list: qualify for it.
		h.answerLocal(resp, q, name+h.domain)
		return resp
	case q.Qtype == dns.TypePTR && h.answerPTR(resp, q, name):
		return resp
	}
	return h.forward(r, resp, network, client)
}

func (h *Handler) hasName(name string) bool {
	var buf [1]netip.Addr
	return len(h.store.LookupName(buf[:0], name)) > 0
}

// answerLocal answers q, a question about name (lower case, in the domain).
func (h *Handler) answerLocal(resp *dns.Msg, q dns.Question, name string) {
	h.stats.local.Add(1)
	resp.Authoritative = true
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		resp.Authoritative = false
		resp.Rcode = dns.RcodeRefused
		return
	}
	if name == h.domain {
		if q.Qtype == dns.TypeSOA || q.Qtype == dns.TypeANY {
			resp.Answer = append(resp.Answer, h.soa())
		} else {
			resp.Ns = append(resp.Ns, h.soa())
		}
		return
	}
	var buf [16]netip.Addr
	addrs := h.store.LookupName(buf[:0], name)
	switch {
	case len(addrs) == 0:
		h.stats.nxdomain.Add(1)
		resp.Rcode = dns.RcodeNameError
		resp.Ns = append(resp.Ns, h.soa())
	case q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY:
		n := len(addrs)
		if q.Qtype == dns.TypeANY {
			n = 1 // RFC 8482: a minimal answer, never an amplifier
		}
		start := int(h.rotation.Add(1)) % len(addrs)
		// One allocation each for the records, their addresses and the
		// answer section, whatever the number of addresses.
		rrs := make([]dns.A, n)
		ips := make([]byte, 4*n)
		resp.Answer = make([]dns.RR, n)
		for i := range n {
			a := addrs[(start+i)%len(addrs)].As4()
			ip := ips[4*i : 4*i+4 : 4*i+4]
			copy(ip, a[:])
			rrs[i] = dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: h.ttl},
				A:   net.IP(ip),
			}
			resp.Answer[i] = &rrs[i]
		}
	default:
		// The name exists but has no record of this type: NOERROR, no data.
		resp.Ns = append(resp.Ns, h.soa())
	}
}

// answerPTR answers a reverse lookup of a weft address and reports whether
// it did; addresses the store does not know are left to upstream.
func (h *Handler) answerPTR(resp *dns.Msg, q dns.Question, name string) bool {
	addr, ok := parseReverse(name)
	if !ok {
		return false
	}
	var buf [4]string
	names := h.store.LookupAddr(buf[:0], addr)
	if len(names) == 0 {
		return false
	}
	h.stats.local.Add(1)
	resp.Authoritative = true
	for _, n := range names {
		resp.Answer = append(resp.Answer, &dns.PTR{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: h.ttl},
			Ptr: n,
		})
	}
	return true
}

// soa is the start of authority of the domain, sent with negative answers.
// Its TTL and minimum are the answer TTL so that a name added right after a
// miss is found within a second.
func (h *Handler) soa() *dns.SOA {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: h.domain, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: h.ttl},
		Ns:      h.soaNS,
		Mbox:    h.soaMbox,
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  h.ttl,
	}
}

// parseReverse turns "d.c.b.a.in-addr.arpa." (lower case) into a.b.c.d.
func parseReverse(name string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa.")
	if !ok {
		return netip.Addr{}, false
	}
	labels := strings.Split(rest, ".")
	if len(labels) != 4 {
		return netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(labels[3] + "." + labels[2] + "." + labels[1] + "." + labels[0])
	if err != nil || !addr.Is4() {
		return netip.Addr{}, false
	}
	return addr, true
}

// udpLimit is the largest UDP answer the client of r accepts, capped at MaxUDPSize.
func udpLimit(r *dns.Msg) int {
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
		size = int(opt.UDPSize())
	}
	return min(size, MaxUDPSize)
}

// networkOf tells whether w answers over TCP or UDP.
func networkOf(w dns.ResponseWriter) string {
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		return "tcp"
	}
	return "udp"
}
