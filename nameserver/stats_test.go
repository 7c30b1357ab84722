package nameserver

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestStatsByTypeAndRcode(t *testing.T) {
	up := &fakeUpstream{}
	h, s := newTestHandler(t, HandlerConfig{Upstream: up})
	mustAdd(t, s, "a.weft.local.", "10.32.0.1", "")
	serve(t, h, &fakeWriter{}, query("a.weft.local.", dns.TypeA))
	serve(t, h, &fakeWriter{}, query("a.weft.local.", dns.TypeA))
	serve(t, h, &fakeWriter{}, query("b.weft.local.", dns.TypeAAAA))
	serve(t, h, &fakeWriter{}, query("www.example.com.", dns.TypeCAA))
	up.fail = true
	serve(t, h, &fakeWriter{}, query("www.example.com.", dns.TypeA))
	got := map[[2]string]uint64{}
	for _, a := range h.Stats().Answers {
		got[[2]string{a.Type, a.Rcode}] = a.N
	}
	want := map[[2]string]uint64{{"A", "NOERROR"}: 2, {"AAAA", "NXDOMAIN"}: 1, {"other", "NOERROR"}: 1, {"A", "SERVFAIL"}: 1}
	if len(got) != len(want) {
		t.Errorf("answers %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("answers %v: %d, want %d (all %v)", k, got[k], v, got)
		}
	}
	l := h.Stats().Upstream
	if l.Count != 1 || l.Buckets[len(l.Buckets)-1] != 1 || l.Sum < 0 {
		t.Errorf("upstream latency %+v, want one exchange", l)
	}
}

func TestLatencyBuckets(t *testing.T) {
	var c counters
	for _, d := range []time.Duration{500 * time.Microsecond, 3 * time.Millisecond, 2 * time.Second, time.Minute} {
		c.upstreamTook(d)
	}
	l := c.upstreamLatency()
	// Cumulative: <=1ms 1, <=5ms 2, ... <=5s 3; the minute is only in Count.
	want := [len(LatencyBuckets)]uint64{1, 2, 2, 2, 2, 2, 2, 3}
	if l.Buckets != want || l.Count != 4 {
		t.Errorf("latency %+v, want buckets %v and count 4", l, want)
	}
	if s := l.Sum; s < 62 || s > 62.01 {
		t.Errorf("sum %v s", s)
	}
}
