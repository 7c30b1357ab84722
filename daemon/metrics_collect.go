package daemon

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/nameserver"
)

// collector is the Prometheus collector of a router: it reads the tables
// of metrics.go, the router's counters and the mesh's status at scrape
// time. Safe for concurrent scrapes.
type collector struct {
	d        *Daemon
	counters map[string]*prometheus.Desc // router counter families by name
	peers    []*prometheus.Desc          // peerMetrics, in order
}

func newCollector(d *Daemon) *collector {
	c := &collector{d: d, counters: map[string]*prometheus.Desc{}}
	for _, f := range counterFamilies {
		c.counters[f.name] = prometheus.NewDesc(f.name, f.help, f.labels, nil)
	}
	for _, m := range peerMetrics {
		c.peers = append(c.peers, prometheus.NewDesc(m.name, m.help, m.labels, nil))
	}
	return c
}

var otherDescs = []*prometheus.Desc{
	descPeerPath, descPeerDropped, descConnections, descPeers, descMACs, descRefused, descForgeries, descClashes, descCtlSent, descCtlRecv,
	descDNS, descDNSAnswers, descDNSUpstream, descDNSRecords, descIPAMOwned, descIPAMUsed, descIPAMHeld, descIPAMConfl,
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.counters {
		ch <- d
	}
	for _, d := range c.peers {
		ch <- d
	}
	for _, d := range otherDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, labels...)
	}
	stats := d.rt.Stats()
	for _, def := range routerCounters {
		if def.reason != "" {
			counter(c.counters[def.family], float64(def.get(&stats)), def.reason)
		} else {
			counter(c.counters[def.family], float64(def.get(&stats)))
		}
	}

	st := d.node.Status()
	var rr control.RouterReport
	d.linkReport(&st, &rr, time.Now())
	for i := range rr.DataPaths {
		p := &rr.DataPaths[i]
		for j, m := range peerMetrics {
			if v, ok := m.get(p); ok {
				ch <- prometheus.MustNewConstMetric(c.peers[j], m.kind, v, p.Peer, p.NickName)
			}
		}
	}
	for _, p := range rr.DataPaths {
		for reason, n := range p.Drops {
			counter(descPeerDropped, float64(n), p.Peer, p.NickName, reason)
		}
	}
	for _, p := range rr.Paths {
		gauge(descPeerPath, 1, p.Peer, p.NickName, p.Path, p.Via)
	}
	for reason, n := range rr.Refusals {
		counter(descRefused, float64(n), reason)
	}
	gauge(descClashes, float64(rr.NameClashes))
	for reason, n := range rr.Forgeries {
		counter(descForgeries, float64(n), reason)
	}
	for kind, n := range rr.ControlBytesSent {
		counter(descCtlSent, float64(n), kind)
	}
	for kind, n := range rr.ControlBytesReceived {
		counter(descCtlRecv, float64(n), kind)
	}

	type key struct{ state, enc string }
	counts := map[key]int{}
	for _, cs := range st.Connections {
		enc := "no"
		if cs.Overlay.Encrypted {
			enc = "yes"
		}
		counts[key{cs.State, enc}]++
	}
	for k, n := range counts {
		gauge(descConnections, float64(n), k.state, k.enc)
	}
	gauge(descPeers, float64(len(st.Peers)))
	gauge(descMACs, float64(len(d.rt.MACs())))

	for _, p := range d.ipam.Status().Pools {
		pool := p.Prefix.String()
		for _, s := range p.Peers {
			gauge(descIPAMOwned, float64(s.Owned), pool, s.Name.String(), s.NickName)
			gauge(descIPAMUsed, float64(s.Used), pool, s.Name.String(), s.NickName)
		}
		gauge(descIPAMHeld, float64(p.Held), pool)
		gauge(descIPAMConfl, float64(len(p.Conflicts)), pool)
	}
	if r := d.dnsReport(); r != nil {
		for name, v := range r.Stats {
			counter(descDNS, float64(v), name)
		}
		for _, a := range r.Answers {
			counter(descDNSAnswers, float64(a.N), a.Type, a.Rcode)
		}
		h := r.UpstreamLatency
		buckets := make(map[float64]uint64, len(h.Bounds))
		for i, b := range h.Bounds {
			buckets[b] = h.Counts[i]
		}
		ch <- prometheus.MustNewConstHistogram(descDNSUpstream, h.Count, h.SumSeconds, buckets)
		gauge(descDNSRecords, float64(len(r.Entries)))
	}
}

// dnsHistogram converts the name server's latency histogram.
func dnsHistogram(l nameserver.Latency) control.Histogram {
	h := control.Histogram{Count: l.Count, SumSeconds: l.Sum}
	for i, b := range nameserver.LatencyBuckets {
		h.Bounds = append(h.Bounds, b)
		h.Counts = append(h.Counts, l.Buckets[i])
	}
	return h
}
