// Package control is the API between the weft command line and a running
// router: JSON over HTTP on a unix socket in the state directory. It holds
// the request and report types, the client the CLI uses, the server-side
// handler, and the text formatting of `weft status`. It has no goroutines
// of its own beyond those net/http starts.
package control

// SocketName is the name of the control socket inside the state directory.
const SocketName = "weft.sock"

// Report is the router's whole state, as printed by `weft report`.
type Report struct {
	Version     string       `json:"version"`
	Protocol    string       `json:"protocol"`
	Router      RouterReport `json:"router"`
	Attachments []Attachment `json:"attachments"`
	Exposed     []string     `json:"exposed"`
	DNS         *DNSReport   `json:"dns,omitempty"`
	IPAM        *IPAMReport  `json:"ipam,omitempty"`
	// Proxy is the Docker API proxy; nil when none is served.
	Proxy *ProxyReport `json:"proxy,omitempty"`
}

// ProxyReport says where the Docker API proxy listens.
type ProxyReport struct {
	// Socket is its unix socket; DOCKER_HOST=unix://Socket uses it.
	Socket string `json:"socket"`
	// Addr is its TCP address (with TLS), "" when none.
	Addr string `json:"addr,omitempty"`
	// Docker is the Docker it forwards to.
	Docker string `json:"docker"`
}

// IPAMReport describes automatic address allocation.
type IPAMReport struct {
	// State is "ready", "idle (...)", "waiting for peers" or "no space: ...".
	State         string `json:"state"`
	Range         string `json:"range"`
	DefaultSubnet string `json:"default_subnet"`
	// Pools lists the range first, then the other pools (Docker subnets).
	Pools []IPAMPool `json:"pools"`
}

// IPAMPool is one address pool and who owns what of it.
type IPAMPool struct {
	Pool string `json:"pool"`
	Size uint64 `json:"size"`
	// Used: this router allocates in it (not only heard of it).
	Used bool `json:"used"`
	// Held is how many addresses targets hold on this router.
	Held uint64 `json:"held"`
	// SeededBy and SeededAt say where the pool's ring started (empty: no
	// ring yet).
	SeededBy string `json:"seeded_by,omitempty"`
	SeededAt string `json:"seeded_at,omitempty"`
	// Tokens is the number of ranges the pool is cut into.
	Tokens int `json:"tokens"`
	// Quarantined counts addresses kept back while a separately seeded
	// mesh's routers claim theirs.
	Quarantined uint64         `json:"quarantined,omitempty"`
	Peers       []IPAMPeer     `json:"peers"`
	Conflicts   []IPAMConflict `json:"conflicts,omitempty"`
}

// IPAMPeer is what one peer owns of a pool.
type IPAMPeer struct {
	Name     string `json:"name"`
	NickName string `json:"nickname,omitempty"`
	// Owned addresses, of which Free are free and Used held (the pool's
	// network and broadcast addresses are neither); Share is Owned / pool
	// size.
	Owned     uint64  `json:"owned"`
	Free      uint64  `json:"free"`
	Used      uint64  `json:"used"`
	Share     float64 `json:"share"`
	Reachable bool    `json:"reachable"`
	Self      bool    `json:"self,omitempty"`
}

// IPAMConflict is an address held both here (by Here) and on another host
// (by There on Peer).
type IPAMConflict struct {
	Addr     string `json:"addr"`
	Here     string `json:"here"`
	There    string `json:"there"`
	Peer     string `json:"peer"`
	NickName string `json:"nickname,omitempty"`
}

// TargetRequest is the body of /target.
type TargetRequest struct {
	Target string `json:"target"`
}

// RmPeerRequest is the body of /rmpeer.
type RmPeerRequest struct {
	Peer string `json:"peer"`
}

// MessageReply is a human-readable answer.
type MessageReply struct {
	Message string `json:"message"`
}

// RouterReport describes the router: identity, mesh and data path.
type RouterReport struct {
	Name            string            `json:"name"`
	NickName        string            `json:"nickname"`
	Port            int               `json:"port"`
	Encryption      bool              `json:"encryption"`
	PeerDiscovery   bool              `json:"peer_discovery"`
	TrustedSubnets  string            `json:"trusted_subnets"`
	Bridge          string            `json:"bridge"`
	MTU             int               `json:"mtu"`
	Targets         []string          `json:"targets"`
	Peers           []Peer            `json:"peers"`
	Connections     []Connection      `json:"connections"`
	UnicastRoutes   []UnicastRoute    `json:"unicast_routes"`
	BroadcastRoutes []BroadcastRoute  `json:"broadcast_routes"`
	MACs            []MAC             `json:"macs"`
	Stats           map[string]uint64 `json:"stats"`
	// Offloads says which kernel offloads the data path uses
	// ("tap_vnet_hdr", "tap_tso", "udp_gso", "udp_gro").
	Offloads map[string]bool `json:"offloads"`
	// FastDPPort is the UDP port of the kernel fast path; 0 when the
	// router runs without one (--no-fastdp, or the kernel refused it).
	FastDPPort int `json:"fastdp_port,omitempty"`
	// DataPaths describes the data path of each confirmed connection.
	DataPaths []DataPath `json:"data_paths"`
	// Paths says how each other known peer is reached.
	Paths []PeerPath `json:"paths"`
	// LinkFailures lists the last data-path failure of each peer whose
	// connection ever failed.
	LinkFailures []LinkFailure `json:"link_failures"`
	// Refusals counts connections refused since the router started, by
	// kind: preauth_limit, password, version, duplicate_name,
	// incompatible, malformed_handshake.
	Refusals map[string]uint64 `json:"refusals"`
	// NameClashes counts other routers seen using our name or a
	// connected peer's.
	NameClashes int `json:"name_clashes"`
	// Forgeries counts gossip dropped since the router started, by kind:
	// topology entries and gossip not signed by the peer they speak for
	// (topology_signature, gossip_source), DNS records not signed by
	// their owner (dns_record_signature), and topology entries beyond
	// the limits (topology_peer_limit, topology_budget).
	Forgeries map[string]uint64 `json:"forgeries"`
	// ControlBytesSent and ControlBytesReceived count control-plane
	// bytes by kind (topology, gossip, heartbeat, overlay, other).
	ControlBytesSent     map[string]uint64 `json:"control_bytes_sent"`
	ControlBytesReceived map[string]uint64 `json:"control_bytes_received"`
}

// Path kinds of PeerPath.Path.
const (
	PathDirect      = "direct"
	PathRelayed     = "relayed"
	PathUnreachable = "unreachable"
)

// PeerPath says how frames reach one peer.
type PeerPath struct {
	Peer     string `json:"peer"`
	NickName string `json:"nickname,omitempty"`
	// Path is PathDirect, PathRelayed or PathUnreachable.
	Path string `json:"path"`
	// Via is the neighbour frames go to first when relayed.
	Via         string `json:"via,omitempty"`
	ViaNickName string `json:"via_nickname,omitempty"`
}

// DataPath is the data path of one confirmed connection.
type DataPath struct {
	Peer        string `json:"peer"`
	NickName    string `json:"nickname,omitempty"`
	Established bool   `json:"established"`
	// Addr is the peer's UDP data address ("" while unknown).
	Addr string `json:"addr,omitempty"`
	// MTU is the path MTU in use; MTUVerified says a probe of that size
	// came back.
	MTU         int  `json:"mtu"`
	MTUVerified bool `json:"mtu_verified"`
	// RTTSeconds is the last measured round trip (0: none yet).
	RTTSeconds float64 `json:"rtt_seconds"`
	// LastHeardSeconds is the age of the last heartbeat received.
	LastHeardSeconds float64 `json:"last_heard_seconds"`
	// HandshakeAgeSeconds is the age of the connection's handshake.
	HandshakeAgeSeconds float64 `json:"handshake_age_seconds"`
	Encrypted           bool    `json:"encrypted"`
	Rekeys              uint64  `json:"rekeys"`
	TxDatagrams         uint64  `json:"tx_datagrams"`
	TxBytes             uint64  `json:"tx_bytes"`
	TxFrames            uint64  `json:"tx_frames"`
	RxDatagrams         uint64  `json:"rx_datagrams"`
	RxBytes             uint64  `json:"rx_bytes"`
	RxFrames            uint64  `json:"rx_frames"`
	Reason              string  `json:"reason,omitempty"`
	// Drops counts datagrams of this peer dropped, by reason:
	// auth_failed, replay, unknown_key, unsealed (received), seal_failed
	// (to send).
	Drops map[string]uint64 `json:"drops"`
}

// LinkFailure is why the data path to a peer last failed.
type LinkFailure struct {
	Peer       string  `json:"peer"`
	NickName   string  `json:"nickname,omitempty"`
	Reason     string  `json:"reason"`
	AgeSeconds float64 `json:"age_seconds"`
}

// PingRequest is the body of /ping: a peer's name or nickname.
type PingRequest struct {
	Peer string `json:"peer"`
}

// PingReply is the answer to one ping over the overlay.
type PingReply struct {
	Peer     string `json:"peer"`
	NickName string `json:"nickname,omitempty"`
	// Path is PathDirect when the ping went and came back over the direct
	// connection, else PathRelayed.
	Path string `json:"path"`
	// SentVia and AnsweredVia are the neighbours the ping went to and the
	// answer came from.
	SentVia     string `json:"sent_via"`
	AnsweredVia string `json:"answered_via"`
	// AnsweredViaNickName is AnsweredVia's nickname.
	AnsweredViaNickName string  `json:"answered_via_nickname,omitempty"`
	RTTSeconds          float64 `json:"rtt_seconds"`
	// ClockOffsetSeconds estimates the peer's clock minus ours.
	ClockOffsetSeconds float64 `json:"clock_offset_seconds"`
}

// Peer is one peer of the mesh and the connections it reports.
type Peer struct {
	Name        string     `json:"name"`
	NickName    string     `json:"nickname"`
	Connections []PeerLink `json:"connections"`
}

// PeerLink is one connection as reported by the peer that holds it.
type PeerLink struct {
	Name        string `json:"name"`
	NickName    string `json:"nickname"`
	Address     string `json:"address"`
	Outbound    bool   `json:"outbound"`
	Established bool   `json:"established"`
}

// Connection is one of this router's control connections (or an attempt).
type Connection struct {
	Outbound  bool   `json:"outbound"`
	Address   string `json:"address"`
	State     string `json:"state"`
	Peer      string `json:"peer,omitempty"`
	NickName  string `json:"nickname,omitempty"`
	Encrypted bool   `json:"encrypted"`
	MTU       int    `json:"mtu,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Path is the path unicast frames to the peer take: "fastdp" (the
	// kernel's VXLAN) or "sleeve" (the router's userspace path); empty
	// before the connection has a data path. PathReason says why.
	Path       string `json:"path,omitempty"`
	PathReason string `json:"path_reason,omitempty"`
	// RTTMicros is the round-trip time of the established control
	// connection in microseconds: the lowest the kernel measured for the
	// TCP connection in the last five minutes; 0 when unknown.
	RTTMicros int64 `json:"rtt_us,omitempty"`
}

// UnicastRoute says which neighbour frames for Dest go to.
type UnicastRoute struct {
	Dest string `json:"dest"`
	Via  string `json:"via"`
}

// BroadcastRoute lists the neighbours a broadcast from Source goes to.
type BroadcastRoute struct {
	Source string   `json:"source"`
	Via    []string `json:"via"`
}

// MAC is one entry of the switch's MAC table.
type MAC struct {
	MAC      string `json:"mac"`
	Peer     string `json:"peer"`
	NickName string `json:"nickname,omitempty"`
	Local    bool   `json:"local"`
	AgeSecs  int    `json:"age_seconds"`
}

// Attachment is one target on the weft network.
type Attachment struct {
	Target string   `json:"target"`
	MAC    string   `json:"mac"`
	Addrs  []string `json:"addrs"`
	Name   string   `json:"name,omitempty"`
}

// DNSReport describes the embedded DNS server.
type DNSReport struct {
	Domain  string      `json:"domain"`
	Address string      `json:"address"`
	Entries []DNSRecord `json:"entries"`
	// Upstream lists the resolvers names outside the domain go to.
	Upstream []string `json:"upstream"`
	// Stats are the server's counters (queries, local, nxdomain, ...).
	Stats map[string]uint64 `json:"stats"`
	// Answers counts answers by query type and response code.
	Answers []DNSAnswers `json:"answers"`
	// UpstreamLatency is the latency of answered upstream exchanges.
	UpstreamLatency Histogram `json:"upstream_latency"`
}

// DNSAnswers is how many answers to one query type had one response code.
type DNSAnswers struct {
	Type  string `json:"type"`
	Rcode string `json:"rcode"`
	N     uint64 `json:"n"`
}

// Histogram is a distribution of durations: Counts[i] is how many were
// at most Bounds[i] seconds (cumulative); Count and SumSeconds cover all.
type Histogram struct {
	Bounds     []float64 `json:"bounds"`
	Counts     []uint64  `json:"counts"`
	Count      uint64    `json:"count"`
	SumSeconds float64   `json:"sum_seconds"`
}

// DNSRecord is one name-to-address record and the peer that owns it.
type DNSRecord struct {
	Name     string `json:"name"`
	Address  string `json:"address"`
	Peer     string `json:"peer"`
	NickName string `json:"nickname,omitempty"`
	Target   string `json:"target,omitempty"`
}

// DNSRequest is the body of /dns/add and /dns/remove. Target, IPs and FQDN
// are each optional; which combinations are valid is said by `weft
// dns-add` and `weft dns-remove`.
type DNSRequest struct {
	Target string   `json:"target,omitempty"`
	IPs    []string `json:"ips,omitempty"`
	FQDN   string   `json:"fqdn,omitempty"`
}

// DNSReply lists the records a DNS request added or removed.
type DNSReply struct {
	Records []DNSRecord `json:"records"`
}

// PeersRequest is the body of /connect and /forget.
type PeersRequest struct {
	Peers   []string `json:"peers"`
	Replace bool     `json:"replace,omitempty"`
}

// AttachRequest is the body of /attach and /detach.
type AttachRequest struct {
	Target     string   `json:"target"`
	CIDRs      []string `json:"cidrs"`
	Name       string   `json:"name,omitempty"`
	WithoutDNS bool     `json:"without_dns,omitempty"`
	// SourceCheck turns the source guard on or off (attach only); nil
	// keeps what the target had, or for a new target: on unless an
	// address is given exactly (CIDR or ip:CIDR).
	SourceCheck *bool `json:"source_check,omitempty"`
}

// AddrsRequest is the body of /expose and /hide.
type AddrsRequest struct {
	CIDRs []string `json:"cidrs"`
}

// AddrsReply lists the addresses an operation added or removed.
type AddrsReply struct {
	Addrs []string `json:"addrs"`
}

// ErrorReply is the body of every failed request.
type ErrorReply struct {
	Error string `json:"error"`
}
