package nameserver

import "sync/atomic"

// Stats counts what a Handler did since it was made, for metrics.
type Stats struct {
	// Queries is every message handed to ServeDNS.
	Queries uint64 `json:"queries"`
	// Local counts queries answered from the store (any rcode).
	Local uint64 `json:"local"`
	// NXDomain counts local NXDOMAIN answers (a subset of Local).
	NXDomain uint64 `json:"nxdomain"`
	// Forwarded counts queries sent upstream.
	Forwarded uint64 `json:"forwarded"`
	// ForwardFailed counts forwarded queries answered SERVFAIL (a subset of Forwarded).
	ForwardFailed uint64 `json:"forward_failed"`
	// Refused counts queries refused to clients not allowed to recurse.
	Refused uint64 `json:"refused"`
	// Malformed counts responses ignored and queries answered FORMERR or NOTIMP.
	Malformed uint64 `json:"malformed"`
	// Truncated counts UDP answers sent with TC set.
	Truncated uint64 `json:"truncated"`
}

type counters struct {
	queries, local, nxdomain, forwarded, forwardFailed, refused, malformed, truncated atomic.Uint64
}

// Stats returns the handler's counters.
func (h *Handler) Stats() Stats {
	c := &h.stats
	return Stats{
		Queries: c.queries.Load(), Local: c.local.Load(), NXDomain: c.nxdomain.Load(),
		Forwarded: c.forwarded.Load(), ForwardFailed: c.forwardFailed.Load(), Refused: c.refused.Load(),
		Malformed: c.malformed.Load(), Truncated: c.truncated.Load(),
	}
}
