package daemon

import (
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/mesh"
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
			RTTMicros: c.RTT.Microseconds(),
			Path:      c.Overlay.Path, PathReason: c.Overlay.PathReason,
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
	d.linkReport(&st, &r.Router, now)
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

// linkReport fills the report's data paths, peer paths, link failures,
// refusals and control-plane bytes from the mesh's status st and the
// router.
func (d *Daemon) linkReport(st *mesh.Status, r *control.RouterReport, now time.Time) {
	nick := func(p mesh.PeerName) string { return d.node.PeerNickName(p) }
	r.DataPaths = []control.DataPath{}
	for _, ps := range d.rt.PeerStats() {
		dp := control.DataPath{
			Peer: ps.Peer.String(), NickName: ps.NickName, Established: ps.Established, Addr: ps.Addr,
			MTU: ps.MTU, MTUVerified: ps.MTUVerified, RTTSeconds: ps.RTT.Seconds(),
			HandshakeAgeSeconds: now.Sub(ps.Since).Seconds(), Encrypted: ps.Encrypted, Rekeys: ps.Rekeys,
			TxDatagrams: ps.TxDatagrams, TxBytes: ps.TxBytes, TxFrames: ps.TxFrames,
			RxDatagrams: ps.RxDatagrams, RxBytes: ps.RxBytes, RxFrames: ps.RxFrames, Reason: ps.Reason,
			Drops: peerDropsMap(&ps),
		}
		if !ps.LastHeard.IsZero() {
			dp.LastHeardSeconds = max(now.Sub(ps.LastHeard).Seconds(), 0)
		}
		r.DataPaths = append(r.DataPaths, dp)
	}
	r.Paths = []control.PeerPath{}
	for _, p := range st.Peers {
		if p.Name == st.Name {
			continue
		}
		pp := control.PeerPath{Peer: p.Name.String(), NickName: p.NickName, Path: control.PathUnreachable}
		if hop, ok := st.UnicastRoutes[p.Name]; ok {
			pp.Path = control.PathDirect
			if hop != p.Name {
				pp.Path, pp.Via, pp.ViaNickName = control.PathRelayed, hop.String(), nick(hop)
			}
		}
		r.Paths = append(r.Paths, pp)
	}
	r.LinkFailures = []control.LinkFailure{}
	for _, f := range d.rt.LinkFailures() {
		r.LinkFailures = append(r.LinkFailures, control.LinkFailure{
			Peer: f.Peer.String(), NickName: nick(f.Peer), Reason: f.Reason, AgeSeconds: now.Sub(f.At).Seconds(),
		})
	}
	r.Refusals, r.NameClashes = st.Refusals, st.NameClashes
	r.Forgeries = st.Forgeries
	if d.dns != nil {
		r.Forgeries["dns_record_signature"] = d.dns.store.Refused()
	}
	r.ControlBytesSent, r.ControlBytesReceived = st.ControlBytesSent, st.ControlBytesReceived
}

// statusHandler serves the read-only HTTP status API: the topology page
// (/ and /api/topology), /status, /status/VIEW, /report and /metrics;
// 404 for any other path, 405 for any method but GET and HEAD.
func (d *Daemon) statusHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newCollector(d))
	mux := http.NewServeMux()
	api := control.NewHandler(d, d.log)
	mux.Handle("GET /status", api)
	mux.Handle("GET /status/{view}", api)
	mux.Handle("GET /report", api)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	d.servePage(mux) // GET / (the topology page) and GET /api/topology: page.go
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "weft status API: no such path; there are /, /api/topology, /status, /status/{peers,connections,targets,dns,ipam}, /report, /metrics", http.StatusNotFound)
	})
	return control.LimitQuery(cleanPaths(mux))
}
