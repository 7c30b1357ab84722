package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/router"
)

// The one table of weft's metrics. `weft report` (router.stats, and the
// per-peer data_paths), `weft status` (which reads the report) and
// /metrics all read the definitions below; a counter is added here once.
// Names follow the Prometheus conventions: a weft_ prefix, base units,
// _total for counters, _bytes and _seconds for sizes and durations.

// counterDef is one of the router's counters: its key in the report's
// router.stats, and the Prometheus family (and reason label, for drops)
// it is exposed as.
type counterDef struct {
	key    string
	family string
	reason string // value of the "reason" label; "" for families without one
	get    func(*router.Stats) uint64
}

// familyDef describes a Prometheus family of the table.
type familyDef struct {
	name   string
	help   string
	labels []string
	kind   prometheus.ValueType
}

// Families of the router's counters.
const (
	famDeviceReadFrames    = "weft_device_read_frames_total"
	famDeviceReadBytes     = "weft_device_read_bytes_total"
	famDeviceWrittenFrames = "weft_device_written_frames_total"
	famDeviceWrittenBytes  = "weft_device_written_bytes_total"
	famUDPRecvDatagrams    = "weft_udp_received_datagrams_total"
	famUDPRecvBytes        = "weft_udp_received_bytes_total"
	famUDPSentDatagrams    = "weft_udp_sent_datagrams_total"
	famUDPSentBytes        = "weft_udp_sent_bytes_total"
	famRecordsRecv         = "weft_records_received_total"
	famRecordsSent         = "weft_records_sent_total"
	famRelayed             = "weft_relayed_records_total"
	famFlooded             = "weft_flooded_frames_total"
	famICMPSent            = "weft_icmp_frag_needed_sent_total"
	famFragmented          = "weft_fragmented_packets_total"
	famSegmented           = "weft_segmented_packets_total"
	famTrainsRefused       = "weft_udp_trains_refused_total"
	famMACMoves            = "weft_mac_moves_total"
	famMACEvictions        = "weft_mac_evictions_total"
	famMACRefused          = "weft_mac_refused_total"
	famDropped             = "weft_dropped_total"
	famFastDPMisses        = "weft_fastdp_misses_total"
	famFastDPRecvFrames    = "weft_fastdp_received_frames_total"
	famFastDPRecvBytes     = "weft_fastdp_received_bytes_total"
	famFastDPSentFrames    = "weft_fastdp_sent_frames_total"
	famFastDPSentBytes     = "weft_fastdp_sent_bytes_total"
	famFastDPBeatsSent     = "weft_fastdp_heartbeats_sent_total"
	famFastDPBeatsRecv     = "weft_fastdp_heartbeats_received_total"
	famFastDPInstalled     = "weft_fastdp_entries_installed_total"
	famFastDPRemoved       = "weft_fastdp_entries_removed_total"
)

var counterFamilies = []familyDef{
	{famDeviceReadFrames, "Frames read from the TAP device (sent into the overlay).", nil, prometheus.CounterValue},
	{famDeviceReadBytes, "Bytes of the frames read from the TAP device.", nil, prometheus.CounterValue},
	{famDeviceWrittenFrames, "Frames written to the TAP device (delivered from peers, and ICMP errors).", nil, prometheus.CounterValue},
	{famDeviceWrittenBytes, "Bytes of the frames written to the TAP device.", nil, prometheus.CounterValue},
	{famUDPRecvDatagrams, "UDP datagrams received from peers.", nil, prometheus.CounterValue},
	{famUDPRecvBytes, "Bytes of the UDP datagrams received.", nil, prometheus.CounterValue},
	{famUDPSentDatagrams, "UDP datagrams sent to peers.", nil, prometheus.CounterValue},
	{famUDPSentBytes, "Bytes of the UDP datagrams sent.", nil, prometheus.CounterValue},
	{famRecordsRecv, "Frame records received in datagrams.", nil, prometheus.CounterValue},
	{famRecordsSent, "Frame records put into datagrams (a flooded frame once per next hop).", nil, prometheus.CounterValue},
	{famRelayed, "Records relayed for other peers.", nil, prometheus.CounterValue},
	{famFlooded, "Frames from the device sent to every peer: broadcasts, multicasts, unicasts to unknown MACs.", nil, prometheus.CounterValue},
	{famICMPSent, "ICMP fragmentation-needed errors synthesized.", nil, prometheus.CounterValue},
	{famFragmented, "IPv4 packets the router fragmented.", nil, prometheus.CounterValue},
	{famSegmented, "TCP segments cut from super-frames for a device without offloads.", nil, prometheus.CounterValue},
	{famTrainsRefused, "Trains of datagrams a path refused (sent again one by one).", nil, prometheus.CounterValue},
	{famMACMoves, "MACs that moved between peers.", nil, prometheus.CounterValue},
	{famMACEvictions, "MACs evicted because the MAC table was full.", nil, prometheus.CounterValue},
	{famMACRefused, "MACs not learned because their port held too many.", nil, prometheus.CounterValue},
	{famDropped, "Frames or datagrams dropped, by reason.", []string{"reason"}, prometheus.CounterValue},
	{famFastDPMisses, "Frames from the TAP to a MAC behind a peer whose fast path was up (the kernel had no entry yet).", nil, prometheus.CounterValue},
	{famFastDPRecvFrames, "Frames the fast path's VXLAN device received (the kernel carried them).", nil, prometheus.CounterValue},
	{famFastDPRecvBytes, "Bytes of the frames the fast path's VXLAN device received.", nil, prometheus.CounterValue},
	{famFastDPSentFrames, "Frames the fast path's VXLAN device sent.", nil, prometheus.CounterValue},
	{famFastDPSentBytes, "Bytes of the frames the fast path's VXLAN device sent.", nil, prometheus.CounterValue},
	{famFastDPBeatsSent, "Fast path heartbeats sent.", nil, prometheus.CounterValue},
	{famFastDPBeatsRecv, "Fast path heartbeats received from connected peers.", nil, prometheus.CounterValue},
	{famFastDPInstalled, "Forwarding entries the fast path installed.", nil, prometheus.CounterValue},
	{famFastDPRemoved, "Forwarding entries the fast path removed.", nil, prometheus.CounterValue},
}

// routerCounters is the table of the router's counters.
var routerCounters = []counterDef{
	{"tap_frames_in", famDeviceReadFrames, "", func(s *router.Stats) uint64 { return s.TAPFramesIn }},
	{"tap_bytes_in", famDeviceReadBytes, "", func(s *router.Stats) uint64 { return s.TAPBytesIn }},
	{"tap_frames_out", famDeviceWrittenFrames, "", func(s *router.Stats) uint64 { return s.TAPFramesOut }},
	{"tap_bytes_out", famDeviceWrittenBytes, "", func(s *router.Stats) uint64 { return s.TAPBytesOut }},
	{"udp_datagrams_in", famUDPRecvDatagrams, "", func(s *router.Stats) uint64 { return s.UDPDatagramsIn }},
	{"udp_bytes_in", famUDPRecvBytes, "", func(s *router.Stats) uint64 { return s.UDPBytesIn }},
	{"udp_datagrams_out", famUDPSentDatagrams, "", func(s *router.Stats) uint64 { return s.UDPDatagramsOut }},
	{"udp_bytes_out", famUDPSentBytes, "", func(s *router.Stats) uint64 { return s.UDPBytesOut }},
	{"records_in", famRecordsRecv, "", func(s *router.Stats) uint64 { return s.RecordsIn }},
	{"records_out", famRecordsSent, "", func(s *router.Stats) uint64 { return s.RecordsOut }},
	{"relayed", famRelayed, "", func(s *router.Stats) uint64 { return s.Relayed }},
	{"flooded", famFlooded, "", func(s *router.Stats) uint64 { return s.Flooded }},
	{"icmp_frag_needed_sent", famICMPSent, "", func(s *router.Stats) uint64 { return s.ICMPSent }},
	{"fragmented", famFragmented, "", func(s *router.Stats) uint64 { return s.Fragmented }},
	{"segmented", famSegmented, "", func(s *router.Stats) uint64 { return s.Segmented }},
	{"trains_refused", famTrainsRefused, "", func(s *router.Stats) uint64 { return s.TrainsRefused }},
	{"mac_moves", famMACMoves, "", func(s *router.Stats) uint64 { return s.MACMoves }},
	{"mac_evictions", famMACEvictions, "", func(s *router.Stats) uint64 { return s.MACEvictions }},
	{"mac_refused", famMACRefused, "", func(s *router.Stats) uint64 { return s.MACRefused }},
	{"drop_too_big", famDropped, "too_big", func(s *router.Stats) uint64 { return s.DropTooBig }},
	{"drop_no_route", famDropped, "no_route", func(s *router.Stats) uint64 { return s.DropNoRoute }},
	{"drop_bad_datagram", famDropped, "bad_datagram", func(s *router.Stats) uint64 { return s.DropBadDatagram }},
	{"drop_unknown_sender", famDropped, "unknown_sender", func(s *router.Stats) uint64 { return s.DropUnknownSender }},
	{"drop_loop", famDropped, "loop", func(s *router.Stats) uint64 { return s.DropLoop }},
	{"drop_send_error", famDropped, "send_error", func(s *router.Stats) uint64 { return s.DropSendError }},
	{"drop_bad_frame", famDropped, "bad_frame", func(s *router.Stats) uint64 { return s.DropBadFrame }},
	{"drop_link_local", famDropped, "link_local", func(s *router.Stats) uint64 { return s.DropLinkLocal }},
	{"drop_device", famDropped, "device", func(s *router.Stats) uint64 { return s.DropDevice }},
	{"drop_offload", famDropped, "offload", func(s *router.Stats) uint64 { return s.DropOffload }},
	{"drop_reassembly", famDropped, "reassembly", func(s *router.Stats) uint64 { return s.DropReassembly }},
	{"drop_host_local", famDropped, "host_local", func(s *router.Stats) uint64 { return s.DropHostLocal }},
	{"drop_auth_failed", famDropped, "auth_failed", func(s *router.Stats) uint64 { return s.DropAuthFailed }},
	{"drop_replay", famDropped, "replay", func(s *router.Stats) uint64 { return s.DropReplay }},
	{"drop_unknown_key", famDropped, "unknown_key", func(s *router.Stats) uint64 { return s.DropUnknownKey }},
	{"drop_unsealed", famDropped, "unsealed", func(s *router.Stats) uint64 { return s.DropUnsealed }},
	{"drop_seal_failed", famDropped, "seal_failed", func(s *router.Stats) uint64 { return s.DropSealFailed }},
	{"drop_bad_vnet", famDropped, "bad_vnet", func(s *router.Stats) uint64 { return s.DropBadVnet }},
	{"fastdp_misses", famFastDPMisses, "", func(s *router.Stats) uint64 { return s.FastPathMisses }},
	{"fastdp_frames_in", famFastDPRecvFrames, "", func(s *router.Stats) uint64 { return s.FastPathFramesIn }},
	{"fastdp_bytes_in", famFastDPRecvBytes, "", func(s *router.Stats) uint64 { return s.FastPathBytesIn }},
	{"fastdp_frames_out", famFastDPSentFrames, "", func(s *router.Stats) uint64 { return s.FastPathFramesOut }},
	{"fastdp_bytes_out", famFastDPSentBytes, "", func(s *router.Stats) uint64 { return s.FastPathBytesOut }},
	{"fastdp_heartbeats_sent", famFastDPBeatsSent, "", func(s *router.Stats) uint64 { return s.FastPathHeartbeatsSent }},
	{"fastdp_heartbeats_received", famFastDPBeatsRecv, "", func(s *router.Stats) uint64 { return s.FastPathHeartbeatsReceived }},
	{"fastdp_entries_installed", famFastDPInstalled, "", func(s *router.Stats) uint64 { return s.FastPathEntriesInstalled }},
	{"fastdp_entries_removed", famFastDPRemoved, "", func(s *router.Stats) uint64 { return s.FastPathEntriesRemoved }},
}

// statsMap is the report's router.stats: every counter of the table by
// its key.
func statsMap(s router.Stats) map[string]uint64 {
	m := make(map[string]uint64, len(routerCounters))
	for _, c := range routerCounters {
		m[c.key] = c.get(&s)
	}
	return m
}

// peerMetric is one per-peer series of the data path of a confirmed
// connection, labelled peer and nickname; ok is false when the value is
// not known (no RTT measured yet).
type peerMetric struct {
	familyDef
	get func(*control.DataPath) (v float64, ok bool)
}

func always(f func(*control.DataPath) float64) func(*control.DataPath) (float64, bool) {
	return func(p *control.DataPath) (float64, bool) { return f(p), true }
}

var peerLabels = []string{"peer", "nickname"}

// peerMetrics is the table of per-peer series; the report's data_paths
// carry the same values.
var peerMetrics = []peerMetric{
	{familyDef{"weft_peer_sent_bytes_total", "Bytes of the datagrams sent to a neighbour.", peerLabels, prometheus.CounterValue},
		always(func(p *control.DataPath) float64 { return float64(p.TxBytes) })},
	{familyDef{"weft_peer_received_bytes_total", "Bytes of the datagrams accepted from a neighbour.", peerLabels, prometheus.CounterValue},
		always(func(p *control.DataPath) float64 { return float64(p.RxBytes) })},
	{familyDef{"weft_peer_sent_datagrams_total", "Datagrams sent to a neighbour (heartbeats and probes included).", peerLabels, prometheus.CounterValue},
		always(func(p *control.DataPath) float64 { return float64(p.TxDatagrams) })},
	{familyDef{"weft_peer_received_datagrams_total", "Datagrams accepted from a neighbour.", peerLabels, prometheus.CounterValue},
		always(func(p *control.DataPath) float64 { return float64(p.RxDatagrams) })},
	{familyDef{"weft_peer_sent_frames_total", "Frame records sent to a neighbour, relayed ones included.", peerLabels, prometheus.CounterValue},
		always(func(p *control.DataPath) float64 { return float64(p.TxFrames) })},
	{familyDef{"weft_peer_received_frames_total", "Frame records received from a neighbour, relayed ones included.", peerLabels, prometheus.CounterValue},
		always(func(p *control.DataPath) float64 { return float64(p.RxFrames) })},
	{familyDef{"weft_peer_rtt_seconds", "Round trip time of the last path MTU probe answered by a neighbour.", peerLabels, prometheus.GaugeValue},
		func(p *control.DataPath) (float64, bool) { return p.RTTSeconds, p.RTTSeconds > 0 }},
	{familyDef{"weft_peer_path_mtu_bytes", "Path MTU in use towards a neighbour (largest IP packet in one datagram).", peerLabels, prometheus.GaugeValue},
		always(func(p *control.DataPath) float64 { return float64(p.MTU) })},
	{familyDef{"weft_peer_path_mtu_verified", "1 when a probe of the path MTU came back, 0 while it is assumed.", peerLabels, prometheus.GaugeValue},
		always(func(p *control.DataPath) float64 { return b2f(p.MTUVerified) })},
	{familyDef{"weft_peer_established", "1 when heartbeats flow both ways with a neighbour, 0 while pending.", peerLabels, prometheus.GaugeValue},
		always(func(p *control.DataPath) float64 { return b2f(p.Established) })},
	{familyDef{"weft_peer_handshake_age_seconds", "Time since the handshake of the connection to a neighbour.", peerLabels, prometheus.GaugeValue},
		always(func(p *control.DataPath) float64 { return p.HandshakeAgeSeconds })},
	{familyDef{"weft_peer_last_heard_seconds", "Time since the last heartbeat from a neighbour.", peerLabels, prometheus.GaugeValue},
		always(func(p *control.DataPath) float64 { return p.LastHeardSeconds })},
	{familyDef{"weft_peer_rekeys_total", "Changes of the data key sending to a neighbour since the handshake.", peerLabels, prometheus.CounterValue},
		always(func(p *control.DataPath) float64 { return float64(p.Rekeys) })},
}

// peerDrops is the table of the drops counted per peer, by the value of
// the reason label (the same as weft_dropped_total's).
var peerDrops = []struct {
	reason string
	get    func(*router.PeerStats) uint64
}{
	{"auth_failed", func(p *router.PeerStats) uint64 { return p.DropAuthFailed }},
	{"replay", func(p *router.PeerStats) uint64 { return p.DropReplay }},
	{"unknown_key", func(p *router.PeerStats) uint64 { return p.DropUnknownKey }},
	{"unsealed", func(p *router.PeerStats) uint64 { return p.DropUnsealed }},
	{"seal_failed", func(p *router.PeerStats) uint64 { return p.DropSealFailed }},
}

// peerDropsMap is the report's data_paths[].drops.
func peerDropsMap(p *router.PeerStats) map[string]uint64 {
	m := make(map[string]uint64, len(peerDrops))
	for _, d := range peerDrops {
		m[d.reason] = d.get(p)
	}
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Router-wide families that are not counters of router.Stats.
var (
	descPeerPath    = prometheus.NewDesc("weft_peer_path", "1 for the path frames take to a known peer: direct, relayed (via a neighbour) or unreachable.", []string{"peer", "nickname", "path", "via"}, nil)
	descPeerDropped = prometheus.NewDesc("weft_peer_dropped_total", "Datagrams of a neighbour dropped, by reason: auth_failed, replay, unknown_key, unsealed (received), seal_failed (to send).", []string{"peer", "nickname", "reason"}, nil)
	descConnections = prometheus.NewDesc("weft_connections", "Connections by state and encryption.", []string{"state", "encryption"}, nil)
	descPeers       = prometheus.NewDesc("weft_peers", "Peers known in the topology, ourselves included.", nil, nil)
	descMACs        = prometheus.NewDesc("weft_macs", "MACs learned (entries of the MAC table).", nil, nil)
	descRefused     = prometheus.NewDesc("weft_refused_connections_total", "Connections refused, by reason: preauth_limit, password, version, duplicate_name, incompatible, malformed_handshake.", []string{"reason"}, nil)
	descForgeries   = prometheus.NewDesc("weft_gossip_dropped_total", "Gossip dropped, by reason: topology_signature, gossip_source, dns_record_signature (not the word of the peer it speaks for), topology_peer_limit, topology_budget.", []string{"reason"}, nil)
	descClashes     = prometheus.NewDesc("weft_peer_name_clashes", "Other routers seen using our peer name or a connected peer's.", nil, nil)
	descCtlSent     = prometheus.NewDesc("weft_control_sent_bytes_total", "Bytes of control messages sent to peers, by kind (topology, gossip, heartbeat, overlay, other).", []string{"kind"}, nil)
	descCtlRecv     = prometheus.NewDesc("weft_control_received_bytes_total", "Bytes of control messages received from peers, by kind.", []string{"kind"}, nil)
	descDNS         = prometheus.NewDesc("weft_dns_total", "DNS server counters by name (queries, local, nxdomain, forwarded, forward_failed, refused, malformed, truncated).", []string{"counter"}, nil)
	descDNSAnswers  = prometheus.NewDesc("weft_dns_answers_total", "DNS answers sent, by query type and response code.", []string{"type", "rcode"}, nil)
	descDNSUpstream = prometheus.NewDesc("weft_dns_upstream_seconds", "Latency of answered exchanges with upstream resolvers.", nil, nil)
	descDNSRecords  = prometheus.NewDesc("weft_dns_records", "Live DNS records held, every peer's.", nil, nil)
	descIPAMOwned   = prometheus.NewDesc("weft_ipam_owned_addresses", "Addresses of a pool in the ranges a peer owns.", []string{"pool", "peer", "nickname"}, nil)
	descIPAMUsed    = prometheus.NewDesc("weft_ipam_used_addresses", "Addresses of a pool a peer reports in use.", []string{"pool", "peer", "nickname"}, nil)
	descIPAMHeld    = prometheus.NewDesc("weft_ipam_held_addresses", "Addresses of a pool held by targets on this router.", []string{"pool"}, nil)
	descIPAMConfl   = prometheus.NewDesc("weft_ipam_conflicts", "Addresses held here and on another host (separately seeded meshes).", []string{"pool"}, nil)
)
