package daemon

import (
	"io"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/router"
)

// Report implements control.Backend: the whole state of the router.
func (d *Daemon) Report() control.Report {
	st := d.node.Status()
	nick := func(p mesh.PeerName) string { return d.node.PeerNickName(p) }
	r := control.Report{
		Version:  d.cfg.Version,
		Protocol: "1",
		Router: control.RouterReport{
			Name:           st.Name.String(),
			NickName:       st.NickName,
			Port:           d.listenPort(),
			PeerDiscovery:  d.cfg.Discovery,
			Encryption:     len(d.cfg.Password) > 0,
			TrustedSubnets: d.cfg.TrustedSubnets.String(),
			Bridge:         d.cfg.Bridge,
			MTU:            d.mtu,
			Targets:        st.Targets,
			Stats:          statsMap(d.rt.Stats()),
			Offloads:       d.rt.Offloads(),
		},
	}
	if d.fast != nil {
		r.Router.FastDPPort = d.fast.port
	}
	if d.proxy != nil {
		r.Proxy = &control.ProxyReport{Socket: d.proxy.socket, Addr: d.proxy.addr, Docker: d.cfg.Proxy.DockerHost}
	}
	if r.Router.Targets == nil {
		r.Router.Targets = []string{}
	}
	for _, p := range st.Peers {
		cp := control.Peer{Name: p.Name.String(), NickName: p.NickName, Connections: []control.PeerLink{}}
		for _, c := range p.Connections {
			cp.Connections = append(cp.Connections, control.PeerLink{
				Name: c.Peer.String(), NickName: c.NickName, Address: c.Address,
				Outbound: c.Outbound, Established: c.Established,
			})
		}
		r.Router.Peers = append(r.Router.Peers, cp)
	}
	for _, c := range st.Connections {
		cc := control.Connection{
			Outbound: c.Outbound, Address: c.Address, State: c.State,
			Encrypted: c.Overlay.Encrypted, MTU: c.Overlay.MTU, Reason: c.Reason,
			Path: c.Overlay.Path, PathReason: c.Overlay.PathReason,
		}
		if c.Peer != mesh.UnknownPeerName {
			cc.Peer, cc.NickName = c.Peer.String(), c.PeerNickName
		}
		if cc.Reason == "" {
			cc.Reason = c.Overlay.Reason
		}
		r.Router.Connections = append(r.Router.Connections, cc)
	}
	for dst, via := range st.UnicastRoutes {
		r.Router.UnicastRoutes = append(r.Router.UnicastRoutes, control.UnicastRoute{Dest: dst.String(), Via: via.String()})
	}
	sort.Slice(r.Router.UnicastRoutes, func(i, j int) bool { return r.Router.UnicastRoutes[i].Dest < r.Router.UnicastRoutes[j].Dest })
	for src, via := range st.BroadcastRoutes {
		br := control.BroadcastRoute{Source: src.String(), Via: []string{}}
		for _, v := range via {
			br.Via = append(br.Via, v.String())
		}
		r.Router.BroadcastRoutes = append(r.Router.BroadcastRoutes, br)
	}
	sort.Slice(r.Router.BroadcastRoutes, func(i, j int) bool { return r.Router.BroadcastRoutes[i].Source < r.Router.BroadcastRoutes[j].Source })
	now := time.Now()
	for _, m := range d.rt.MACs() {
		r.Router.MACs = append(r.Router.MACs, control.MAC{
			MAC: m.MAC.String(), Peer: m.Peer.String(), NickName: nick(m.Peer),
			Local: m.Peer == d.self, AgeSecs: int(now.Sub(m.LastSeen).Seconds()),
		})
	}
	r.DNS = d.dnsReport()
	r.IPAM = d.ipamReport()
	d.mu.Lock()
	defer d.mu.Unlock()
	names := map[string]string{}
	if atts, err := d.store.Attachments(); err == nil {
		for _, a := range atts {
			names[a.Target] = a.Name
		}
	}
	r.Attachments = []control.Attachment{}
	if list, err := d.deps.Host.List(d.cfg.Bridge); err == nil {
		for _, a := range list {
			if a.Err != nil {
				continue
			}
			r.Attachments = append(r.Attachments, control.Attachment{
				Target: a.Target, MAC: a.MAC.String(), Addrs: prefixStrings(a.Addrs), Name: names[a.Target],
			})
		}
	}
	r.Exposed = []string{}
	if ex, err := d.deps.Host.Exposed(d.cfg.Bridge); err == nil {
		r.Exposed = prefixStrings(ex)
	}
	return r
}

// listenPort is the TCP port the mesh actually listens on.
func (d *Daemon) listenPort() int {
	if a, ok := d.node.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return d.cfg.Port
}

func statsMap(s router.Stats) map[string]uint64 {
	return map[string]uint64{
		"tap_frames_in": s.TAPFramesIn, "tap_bytes_in": s.TAPBytesIn,
		"tap_frames_out": s.TAPFramesOut, "tap_bytes_out": s.TAPBytesOut,
		"udp_datagrams_in": s.UDPDatagramsIn, "udp_bytes_in": s.UDPBytesIn,
		"udp_datagrams_out": s.UDPDatagramsOut, "udp_bytes_out": s.UDPBytesOut,
		"records_in": s.RecordsIn, "records_out": s.RecordsOut, "relayed": s.Relayed,
		"icmp_frag_needed_sent": s.ICMPSent, "fragmented": s.Fragmented, "segmented": s.Segmented,
		"trains_refused": s.TrainsRefused, "fastdp_misses": s.FastPathMisses, "mac_moves": s.MACMoves, "mac_evictions": s.MACEvictions, "mac_refused": s.MACRefused,
		"drop_too_big": s.DropTooBig, "drop_no_route": s.DropNoRoute,
		"drop_bad_datagram": s.DropBadDatagram, "drop_unknown_sender": s.DropUnknownSender,
		"drop_loop": s.DropLoop, "drop_send_error": s.DropSendError,
		"drop_bad_frame": s.DropBadFrame, "drop_link_local": s.DropLinkLocal, "drop_device": s.DropDevice,
		"drop_offload": s.DropOffload, "drop_reassembly": s.DropReassembly, "drop_host_local": s.DropHostLocal,
		"drop_auth_failed": s.DropAuthFailed, "drop_replay": s.DropReplay, "drop_unknown_key": s.DropUnknownKey,
		"drop_unsealed": s.DropUnsealed, "drop_seal_failed": s.DropSealFailed, "drop_bad_vnet": s.DropBadVnet,
	}
}

// statusHandler serves the read-only HTTP status API: /status,
// /status/VIEW, /report and /metrics.
func (d *Daemon) statusHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &metrics{d: d})
	mux := http.NewServeMux()
	api := control.NewHandler(d, d.log)
	mux.Handle("GET /status", api)
	mux.Handle("GET /status/{view}", api)
	mux.Handle("GET /report", api)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "weft status API: /status, /status/{peers,connections,targets,dns,ipam}, /report, /metrics\n")
	})
	return mux
}

// metrics is a Prometheus collector reading the router's counters and the
// mesh's status at scrape time.
type metrics struct{ d *Daemon }

var (
	descConnections = prometheus.NewDesc("weft_connections", "Connections by state and encryption.", []string{"state", "encryption"}, nil)
	descPeers       = prometheus.NewDesc("weft_peers", "Peers known in the topology, ourselves included.", nil, nil)
	descMACs        = prometheus.NewDesc("weft_macs", "Entries of the MAC table.", nil, nil)
	descCounter     = prometheus.NewDesc("weft_dataplane_total", "Data plane counters by name.", []string{"counter"}, nil)
	descPeerMTU     = prometheus.NewDesc("weft_connection_mtu", "Verified MTU of the data path to a peer.", []string{"peer"}, nil)
	descDNS         = prometheus.NewDesc("weft_dns_total", "DNS server counters by name.", []string{"counter"}, nil)
	descDNSRecords  = prometheus.NewDesc("weft_dns_records", "Live DNS records held, every peer's.", nil, nil)
	descIPAMOwned   = prometheus.NewDesc("weft_ipam_owned_addresses", "Addresses of a pool in the ranges a peer owns.", []string{"pool", "peer", "nickname"}, nil)
	descIPAMUsed    = prometheus.NewDesc("weft_ipam_used_addresses", "Addresses of a pool a peer reports in use.", []string{"pool", "peer", "nickname"}, nil)
	descIPAMHeld    = prometheus.NewDesc("weft_ipam_held_addresses", "Addresses of a pool held by targets on this router.", []string{"pool"}, nil)
	descIPAMConfl   = prometheus.NewDesc("weft_ipam_conflicts", "Addresses held here and on another host (separately seeded meshes).", []string{"pool"}, nil)
)

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnections, descPeers, descMACs, descCounter, descPeerMTU, descDNS, descDNSRecords, descIPAMOwned, descIPAMUsed, descIPAMHeld, descIPAMConfl} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	st := m.d.node.Status()
	type key struct{ state, enc string }
	counts := map[key]int{}
	for _, c := range st.Connections {
		enc := "no"
		if c.Overlay.Encrypted {
			enc = "yes"
		}
		counts[key{c.State, enc}]++
		if c.State == mesh.StateEstablished {
			ch <- prometheus.MustNewConstMetric(descPeerMTU, prometheus.GaugeValue, float64(c.Overlay.MTU), c.Peer.String())
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, float64(n), k.state, k.enc)
	}
	ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(len(st.Peers)))
	ch <- prometheus.MustNewConstMetric(descMACs, prometheus.GaugeValue, float64(len(m.d.rt.MACs())))
	for name, v := range statsMap(m.d.rt.Stats()) {
		ch <- prometheus.MustNewConstMetric(descCounter, prometheus.CounterValue, float64(v), name)
	}
	for name, v := range m.d.fast.counters() {
		ch <- prometheus.MustNewConstMetric(descCounter, prometheus.CounterValue, float64(v), name)
	}
	for _, p := range m.d.ipam.Status().Pools {
		pool := p.Prefix.String()
		for _, s := range p.Peers {
			ch <- prometheus.MustNewConstMetric(descIPAMOwned, prometheus.GaugeValue, float64(s.Owned), pool, s.Name.String(), s.NickName)
			ch <- prometheus.MustNewConstMetric(descIPAMUsed, prometheus.GaugeValue, float64(s.Used), pool, s.Name.String(), s.NickName)
		}
		ch <- prometheus.MustNewConstMetric(descIPAMHeld, prometheus.GaugeValue, float64(p.Held), pool)
		ch <- prometheus.MustNewConstMetric(descIPAMConfl, prometheus.GaugeValue, float64(len(p.Conflicts)), pool)
	}
	if r := m.d.dnsReport(); r != nil {
		for name, v := range r.Stats {
			ch <- prometheus.MustNewConstMetric(descDNS, prometheus.CounterValue, float64(v), name)
		}
		ch <- prometheus.MustNewConstMetric(descDNSRecords, prometheus.GaugeValue, float64(len(r.Entries)))
	}
}
