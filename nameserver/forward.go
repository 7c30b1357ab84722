package nameserver

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// forward sends r to the upstream resolvers and fills resp from their answer,
// or makes it SERVFAIL (REFUSED for clients not allowed to recurse).
func (h *Handler) forward(r, resp *dns.Msg, network string, client net.Addr) *dns.Msg {
	if !h.mayForward(client) {
		h.stats.refused.Add(1)
		resp.Rcode = dns.RcodeRefused
		return resp
	}
	h.stats.forwarded.Add(1)
	if h.upstream == nil {
		h.stats.forwardFailed.Add(1)
		resp.Rcode = dns.RcodeServerFailure
		return resp
	}
	q := new(dns.Msg)
	q.Id = dns.Id()
	q.Question = []dns.Question{r.Question[0]}
	q.RecursionDesired = r.RecursionDesired
	q.CheckingDisabled = r.CheckingDisabled
	if opt := r.IsEdns0(); opt != nil {
		q.SetEdns0(uint16(udpLimit(r)), opt.Do())
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	start := time.Now()
	up, err := h.upstream.Exchange(ctx, q, network)
	if err == nil && up != nil {
		h.stats.upstreamTook(time.Since(start))
	}
	if err != nil || up == nil {
		h.stats.forwardFailed.Add(1)
		h.log.Debug("dns: forward", "name", r.Question[0].Name, "err", err)
		resp.Rcode = dns.RcodeServerFailure
		return resp
	}
	up.Id = r.Id
	up.Response = true
	up.Question = resp.Question
	return up
}

// mayForward reports whether client may use this server as a recursive resolver.
func (h *Handler) mayForward(client net.Addr) bool {
	allowed := *h.forwardFrom.Load()
	if len(allowed) == 0 {
		return true
	}
	var ip net.IP
	switch a := client.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	default:
		return false
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	addr = addr.Unmap()
	if addr.IsLoopback() {
		return true
	}
	for _, p := range allowed {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
