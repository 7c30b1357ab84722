package nameserver

import (
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

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
	// Answers counts the answers sent, by query type and response code;
	// only pairs seen are listed.
	Answers []AnswerCount `json:"answers,omitempty"`
	// Upstream is the latency of the exchanges with upstream resolvers
	// that got an answer.
	Upstream Latency `json:"upstream"`
}

// AnswerCount is how many answers of one query type had one response code.
type AnswerCount struct {
	// Type is the query type ("A", "AAAA", "PTR", "SRV", "MX", "TXT",
	// "SOA", "ANY", or "other").
	Type string `json:"type"`
	// Rcode is the response code ("NOERROR", "NXDOMAIN", "SERVFAIL",
	// "REFUSED", "FORMERR", "NOTIMP", or "other").
	Rcode string `json:"rcode"`
	N     uint64 `json:"n"`
}

// LatencyBuckets are the upper bounds, in seconds, of Latency.Buckets.
var LatencyBuckets = [...]float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5}

// Latency is a histogram of durations.
type Latency struct {
	// Buckets[i] counts durations of at most LatencyBuckets[i] seconds
	// (cumulative, as Prometheus histograms are).
	Buckets [len(LatencyBuckets)]uint64 `json:"buckets"`
	// Count and Sum are the number of durations and their sum in seconds.
	Count uint64  `json:"count"`
	Sum   float64 `json:"sum_seconds"`
}

var (
	answerTypes  = [...]uint16{dns.TypeA, dns.TypeAAAA, dns.TypePTR, dns.TypeSRV, dns.TypeMX, dns.TypeTXT, dns.TypeSOA, dns.TypeANY}
	answerRcodes = [...]int{dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeFormatError, dns.RcodeNotImplemented}
)

type counters struct {
	queries, local, nxdomain, forwarded, forwardFailed, refused, malformed, truncated atomic.Uint64

	answers [len(answerTypes) + 1][len(answerRcodes) + 1]atomic.Uint64
	// upstream latency: bucket counts (not cumulative), count, sum in ns
	latency             [len(LatencyBuckets)]atomic.Uint64
	latencyN, latencyNs atomic.Uint64
}

// answered counts an answer with rcode to a question of qtype.
func (c *counters) answered(qtype uint16, rcode int) {
	t, r := len(answerTypes), len(answerRcodes)
	for i, x := range answerTypes {
		if x == qtype {
			t = i
		}
	}
	for i, x := range answerRcodes {
		if x == rcode {
			r = i
		}
	}
	c.answers[t][r].Add(1)
}

// upstreamTook counts one upstream exchange that took d.
func (c *counters) upstreamTook(d time.Duration) {
	c.latencyN.Add(1)
	c.latencyNs.Add(uint64(max(d, 0)))
	for i, b := range LatencyBuckets {
		if d.Seconds() <= b {
			c.latency[i].Add(1)
			return
		}
	}
}

// Stats returns the handler's counters.
func (h *Handler) Stats() Stats {
	c := &h.stats
	return Stats{
		Queries: c.queries.Load(), Local: c.local.Load(), NXDomain: c.nxdomain.Load(),
		Forwarded: c.forwarded.Load(), ForwardFailed: c.forwardFailed.Load(), Refused: c.refused.Load(),
		Malformed: c.malformed.Load(), Truncated: c.truncated.Load(),
		Answers: c.answerCounts(), Upstream: c.upstreamLatency(),
	}
}

func (c *counters) answerCounts() []AnswerCount {
	var out []AnswerCount
	for t := range c.answers {
		for r := range c.answers[t] {
			n := c.answers[t][r].Load()
			if n == 0 {
				continue
			}
			a := AnswerCount{Type: "other", Rcode: "other", N: n}
			if t < len(answerTypes) {
				a.Type = dns.TypeToString[answerTypes[t]]
			}
			if r < len(answerRcodes) {
				a.Rcode = dns.RcodeToString[answerRcodes[r]]
			}
			out = append(out, a)
		}
	}
	return out
}

func (c *counters) upstreamLatency() Latency {
	l := Latency{Count: c.latencyN.Load(), Sum: time.Duration(c.latencyNs.Load()).Seconds()}
	var cum uint64
	for i := range c.latency {
		cum += c.latency[i].Load()
		l.Buckets[i] = cum
	}
	return l
}
